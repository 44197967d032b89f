// The guide's "enrich" example as a Fiso reactor (mode: reactor) in standard Go: the same
// transformation and output as ../enrich-go/main.go, entered through exported functions instead of
// stdin and stdout, by an instance that serves many events.
//
//	fiso_alloc(len)       -> a buffer of len bytes for the host to write the input envelope into
//	fiso_handle(ptr, len) -> (output pointer << 32) | output length, or -1 to refuse the event
//
// Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o enrich.wasm (see ../build.sh).
package main

import (
	"bytes"
	"encoding/json"
	"unsafe"
)

// Input structure received from Fiso
type wasmInput struct {
	Payload   json.RawMessage   `json:"payload"`
	Headers   map[string]string `json:"headers"`
	Direction string            `json:"direction"`
}

// Output structure returned to Fiso
type wasmOutput struct {
	Payload interface{}       `json:"payload"`
	Headers map[string]string `json:"headers"`
}

// The buffers handed to the host. Kept in package variables so that the garbage collector leaves
// them alone until the next event replaces them.
var (
	input  []byte
	output bytes.Buffer
)

func main() {} // required by -buildmode=c-shared; never called

//go:wasmexport fiso_alloc
func fisoAlloc(length int32) int32 {
	if cap(input) < int(length) || cap(input) == 0 {
		input = make([]byte, max(int(length), 1))
	}
	input = input[:length]
	return int32(uintptr(unsafe.Pointer(unsafe.SliceData(input[:cap(input)]))))
}

//go:wasmexport fiso_handle
func fisoHandle(pointer int32, length int32) int64 {
	result, ok := transform(input[:length])
	if !ok {
		return -1 // refused, as the command exits with status 1
	}
	output.Reset()
	output.Write(result)
	data := output.Bytes()
	return int64(uintptr(unsafe.Pointer(unsafe.SliceData(data))))<<32 | int64(len(data))
}

// transform is the command's main, from the input bytes to the output bytes.
func transform(raw []byte) ([]byte, bool) {
	var req wasmInput
	if err := json.Unmarshal(raw, &req); err != nil {
		return nil, false
	}

	// Parse and transform the payload
	var data map[string]interface{}
	if err := json.Unmarshal(req.Payload, &data); err != nil {
		return nil, false
	}

	// Your transformation logic here
	data["processed_by"] = "wasm-module"
	data["timestamp"] = "2024-01-15T10:00:00Z"

	// Optionally modify headers
	if req.Headers == nil {
		req.Headers = make(map[string]string)
	}
	req.Headers["X-WASM-Processed"] = "true"

	var encoded bytes.Buffer
	if err := json.NewEncoder(&encoded).Encode(wasmOutput{Payload: data, Headers: req.Headers}); err != nil {
		return nil, false
	}
	return encoded.Bytes(), true
}
