#!/usr/bin/env python3
"""The official CloudEvents Python SDK (PyPI `cloudevents`, 1.x API) as a client and a judge for
the CloudEvents interop tests (CloudEventsInteropTests.swift).

    python3 ce_sdk.py http-request --mode structured|binary|batch   < {"events": [EVENT, ...]}
    python3 ce_sdk.py http-parse                                     < {"headers": {...}, "body_base64": "..."}
    python3 ce_sdk.py kafka-record --mode structured|binary [--spec-content-type]   < EVENT (+ "key")
    python3 ce_sdk.py kafka-parse                                    < {"headers": [[n, v], ...], "key": ..., "value_base64": "..."}
    python3 ce_sdk.py check                                          (prints the SDK version)

EVENT is {"attributes": {...}, "data": <JSON value>} (or "data_base64" for bytes data). A string
`data` whose `datacontenttype` is not JSON goes out as raw text in binary mode (the SDK's default
binary marshaller would JSON-quote it). Input is JSON on stdin (or `--input FILE`), output one JSON
document on stdout. Exit status: 0 done, 1 the SDK rejected the input (reason on stderr), 2 usage
error or the SDK is missing.

Everything that builds or reads an event goes through the SDK (`cloudevents.conversion.to_structured`
/ `to_binary`, `cloudevents.http.from_http`, `cloudevents.kafka.*`); this script only moves bytes
between JSON and the SDK. cloudevents 2.x keeps that API under `cloudevents.v1`, used as a fallback.
"""

import argparse
import base64
import json
import sys

try:
    from cloudevents.conversion import to_binary, to_structured
    from cloudevents.http import CloudEvent, from_http
    from cloudevents import kafka as ce_kafka
    import cloudevents.exceptions as ce_exceptions
except ImportError:  # cloudevents 2.x: the 1.x API lives on as cloudevents.v1
    try:
        from cloudevents.v1.conversion import to_binary, to_structured
        from cloudevents.v1.http import CloudEvent, from_http
        from cloudevents.v1 import kafka as ce_kafka
        import cloudevents.v1.exceptions as ce_exceptions
    except ImportError as error:
        sys.stderr.write(
            "ce_sdk.py: the CloudEvents Python SDK is not installed (%s); "
            "run `scripts/setup.sh test` or `python3 -m pip install 'cloudevents==1.*'`\n" % error
        )
        sys.exit(2)

BATCH_CONTENT_TYPE = "application/cloudevents-batch+json"
STRUCTURED_CONTENT_TYPE = "application/cloudevents+json"


class UsageError(Exception):
    pass


# MARK: JSON <-> SDK values


def is_json_content_type(content_type):
    """True for a JSON media type (`application/json`, `text/json`, `application/x+json`, ...)."""
    if content_type is None:
        return True  # CloudEvents: no datacontenttype means application/json
    media = content_type.split(";")[0].strip().lower()
    return media.endswith("/json") or media.endswith("+json")


def make_event(spec):
    """A CloudEvent of the SDK from {"attributes": {...}, "data": ... | "data_base64": "..."}."""
    if not isinstance(spec, dict) or not isinstance(spec.get("attributes"), dict):
        raise UsageError('an event is {"attributes": {...}, "data": ...}')
    if "data_base64" in spec:
        data = base64.b64decode(spec["data_base64"])
    else:
        data = spec.get("data")
    return CloudEvent(spec["attributes"], data)


def binary_data_marshaller(event):
    """The SDK's default binary marshaller (JSON), except that text data of a non-JSON content
    type goes out as it is, as an SDK user sending text would pass `data_marshaller`."""
    data = event.get_data()
    if isinstance(data, str) and not is_json_content_type(event.get("datacontenttype")):
        return lambda value: value
    return None  # the SDK's default


def header_text(value):
    """A header value as text (the SDK returns attribute values as they were given)."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8")
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def json_or_string(content):
    """The SDK's own default for HTTP (`_json_or_string`), used for Kafka binary data as well:
    JSON when the bytes are JSON, else the text."""
    if content is None:
        return None
    try:
        return json.loads(content)
    except (json.JSONDecodeError, TypeError, UnicodeDecodeError):
        return content


def plain(value):
    """A value the SDK returned, as JSON (bytes become text, or base64 when not UTF-8)."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return {"base64": base64.b64encode(raw).decode("ascii")}
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)  # e.g. a datetime


def describe(event, mode):
    """{"attributes": {...all, extensions included...}, "data": ..., "mode": ...}"""
    attributes = {name: plain(event[name]) for name in event}
    result = {"attributes": attributes, "data": plain(event.get_data()), "mode": mode}
    data = event.get_data()
    if isinstance(data, (bytes, bytearray, memoryview)):
        try:
            bytes(data).decode("utf-8")
        except UnicodeDecodeError:
            result["data"] = None
            result["data_base64"] = base64.b64encode(bytes(data)).decode("ascii")
    return result


def read_headers(raw):
    """Headers as a dict, from {"name": "value"} or [["name", "value"], ...]."""
    if isinstance(raw, dict):
        return {str(k): header_text(v) for k, v in raw.items()}
    if isinstance(raw, list):
        headers = {}
        for pair in raw:
            if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                raise UsageError("headers are [[name, value], ...] or {name: value}")
            headers[str(pair[0])] = "" if pair[1] is None else header_text(pair[1])
        return headers
    if raw is None:
        return {}
    raise UsageError("headers are [[name, value], ...] or {name: value}")


# MARK: Commands


def http_request(document, mode):
    events = document.get("events") if isinstance(document, dict) else None
    if not isinstance(events, list) or not events:
        raise UsageError('http-request reads {"events": [event, ...]}')
    if mode == "batch":
        envelopes = []
        for spec in events:
            _, body = to_structured(make_event(spec))
            envelopes.append(json.loads(body))
        headers = {"content-type": BATCH_CONTENT_TYPE}
        body = json.dumps(envelopes).encode("utf-8")
    else:
        if len(events) != 1:
            raise UsageError("http-request --mode %s takes exactly one event" % mode)
        event = make_event(events[0])
        if mode == "structured":
            headers, body = to_structured(event)
        else:
            headers, body = to_binary(event, data_marshaller=binary_data_marshaller(event))
    if isinstance(body, str):
        body = body.encode("utf-8")
    return {
        "headers": {name: header_text(value) for name, value in headers.items()},
        "body_base64": base64.b64encode(body or b"").decode("ascii"),
    }


def http_parse(document):
    if not isinstance(document, dict):
        raise UsageError('http-parse reads {"headers": {...}, "body_base64": "..."}')
    headers = read_headers(document.get("headers"))
    body = base64.b64decode(document.get("body_base64") or "")
    mode = "binary" if any(name.lower() == "ce-specversion" for name in headers) else "structured"
    event = from_http(headers, body)
    return describe(event, mode)


def kafka_record(document, mode, spec_content_type):
    event = make_event(document)
    key = document.get("key")
    key_mapper = (lambda _event: key) if key is not None else None
    if mode == "binary":
        if event.get("datacontenttype") is None:
            raise UsageError(
                "kafka-record --mode binary needs attributes.datacontenttype "
                "(the SDK's cloudevents.kafka.to_binary reads it unconditionally)"
            )
        marshaller = binary_data_marshaller(event)
        message = ce_kafka.to_binary(event, data_marshaller=marshaller, key_mapper=key_mapper)
    else:
        message = ce_kafka.to_structured(event, key_mapper=key_mapper)
    headers = [[name, header_text(value)] for name, value in message.headers.items()]
    if mode == "structured" and spec_content_type:
        # The Kafka protocol binding (3.2) wants the event format's media type here; the 1.x SDK
        # writes the data's content type instead. This variant is what spec-following producers send.
        headers = [pair for pair in headers if pair[0].lower() != "content-type"]
        headers.append(["content-type", STRUCTURED_CONTENT_TYPE])
    value = message.value
    if isinstance(value, str):
        value = value.encode("utf-8")
    return {
        "headers": headers,
        "key": plain(message.key),
        "value_base64": base64.b64encode(value or b"").decode("ascii"),
    }


def kafka_parse(document):
    if not isinstance(document, dict):
        raise UsageError('kafka-parse reads {"headers": [[name, value], ...], "key": ..., "value_base64": "..."}')
    headers = {name: value.encode("utf-8") for name, value in read_headers(document.get("headers")).items()}
    value = base64.b64decode(document.get("value_base64") or "")
    key = document.get("key")
    message = ce_kafka.KafkaMessage(headers=headers, key=key, value=value)
    if any(name.lower() == "ce_specversion" for name in headers):
        event = ce_kafka.from_binary(message, data_unmarshaller=json_or_string)
        return describe(event, "binary")
    event = ce_kafka.from_structured(message)
    return describe(event, "structured")


def sdk_version():
    try:
        import importlib.metadata as metadata

        return metadata.version("cloudevents")
    except Exception:  # noqa: BLE001 - the version is informational only
        return "unknown"


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["http-request", "http-parse", "kafka-record", "kafka-parse", "check"])
    parser.add_argument("--mode", choices=["structured", "binary", "batch"])
    parser.add_argument("--spec-content-type", action="store_true")
    parser.add_argument("--input", help="read the JSON input from this file instead of stdin")
    arguments = parser.parse_args(argv)

    if arguments.command == "check":
        json.dump({"cloudevents": sdk_version()}, sys.stdout)
        sys.stdout.write("\n")
        return 0
    try:
        if arguments.input:
            with open(arguments.input, "rb") as handle:
                text = handle.read()
        else:
            text = sys.stdin.buffer.read()
        try:
            document = json.loads(text)
        except json.JSONDecodeError as error:
            raise UsageError("the input is not JSON: %s" % error)
        if arguments.command == "http-request":
            if arguments.mode not in ("structured", "binary", "batch"):
                raise UsageError("http-request needs --mode structured|binary|batch")
            result = http_request(document, arguments.mode)
        elif arguments.command == "http-parse":
            result = http_parse(document)
        elif arguments.command == "kafka-record":
            if arguments.mode not in ("structured", "binary"):
                raise UsageError("kafka-record needs --mode structured|binary")
            result = kafka_record(document, arguments.mode, arguments.spec_content_type)
        else:
            result = kafka_parse(document)
    except UsageError as error:
        sys.stderr.write("ce_sdk.py: %s\n" % error)
        return 2
    except (ce_exceptions.GenericException, ValueError, KeyError, TypeError, AttributeError) as error:
        sys.stderr.write("ce_sdk.py: the CloudEvents SDK rejected it: %s: %s\n" % (type(error).__name__, error))
        return 1
    json.dump(result, sys.stdout, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
