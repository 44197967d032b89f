#!/usr/bin/env bash
# Regenerates the Swift code for the gRPC services in proto/: fiso's own EventService and the
# health service into Sources/FisoGRPC/Generated/, the subset of Temporal's frontend API into
# Sources/FisoTemporal/Generated/.
#
# The generated code is committed, because building the two protoc plugins takes several minutes;
# run this script only after changing a .proto file. It installs Debian's protobuf-compiler when
# protoc is missing, builds protoc-gen-swift (swift-protobuf) and protoc-gen-grpc-swift-2
# (grpc-swift-protobuf) at the versions Package.swift uses, in a scratch package outside the
# sources (default .build-protoc-plugins/, ignored by git; override with FISO_PROTOC_PLUGINS_DIR),
# and runs protoc. Usage: scripts/generate-grpc.sh
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
plugins_dir="${FISO_PROTOC_PLUGINS_DIR:-$repo/.build-protoc-plugins}"
proto_root="$repo/proto"
# Keep in step with Package.swift: a plugin must not be newer than the runtime library it targets.
swift_protobuf_version="1.39.0"
grpc_swift_protobuf_version="2.4.1"
grpc_proto_files=(
    fiso/flow/v1/event_service.proto
    grpc/health/v1/health.proto
)
temporal_proto_files=(
    temporal/api/common/v1/message.proto
    temporal/api/enums/v1/task_queue.proto
    temporal/api/taskqueue/v1/message.proto
    temporal/api/namespace/v1/message.proto
    temporal/api/workflowservice/v1/request_response.proto
    temporal/api/workflowservice/v1/service.proto
)

run_as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        echo "generate-grpc: need root to run: $*" >&2
        exit 1
    fi
}

# 1. protoc, from Debian.
if ! command -v protoc >/dev/null; then
    echo "generate-grpc: installing protobuf-compiler"
    run_as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive run_as_root apt-get install -y -qq protobuf-compiler >/dev/null
fi

# 2. The two plugins, from a scratch package that only depends on the packages that provide them.
mkdir -p "$plugins_dir"
manifest="$(
    cat <<EOF
// swift-tools-version:6.2
// Written by scripts/generate-grpc.sh: builds the protoc plugins. Not part of the product.
import PackageDescription

let package = Package(
    name: "fiso-protoc-plugins",
    dependencies: [
        .package(url: "https://github.com/apple/swift-protobuf", exact: "$swift_protobuf_version", traits: []),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf", exact: "$grpc_swift_protobuf_version"),
    ],
    targets: []
)
EOF
)"
# Rewrite the manifest only when it changes, so an unchanged one does not trigger a re-plan.
if [ ! -f "$plugins_dir/Package.swift" ] || [ "$(cat "$plugins_dir/Package.swift")" != "$manifest" ]; then
    printf '%s\n' "$manifest" >"$plugins_dir/Package.swift"
fi
echo "generate-grpc: building protoc-gen-swift and protoc-gen-grpc-swift-2 in $plugins_dir (minutes the first time)"
swift build --package-path "$plugins_dir" --product protoc-gen-swift
swift build --package-path "$plugins_dir" --product protoc-gen-grpc-swift-2
bin_dir="$(swift build --package-path "$plugins_dir" --show-bin-path)"

# 3. Generate each module's files into a fresh directory, then replace its old output.
generate() {
    local output_dir="$1"
    shift
    local staging
    staging="$(mktemp -d)"
    protoc \
        --proto_path="$proto_root" \
        --plugin=protoc-gen-swift="$bin_dir/protoc-gen-swift" \
        --swift_out="$staging" \
        --swift_opt=Visibility=Public \
        --swift_opt=FileNaming=PathToUnderscores \
        --plugin=protoc-gen-grpc-swift-2="$bin_dir/protoc-gen-grpc-swift-2" \
        --grpc-swift-2_out="$staging" \
        --grpc-swift-2_opt=Visibility=Public \
        --grpc-swift-2_opt=FileNaming=PathToUnderscores \
        "$@"
    mkdir -p "$output_dir"
    rm -f "$output_dir"/*.swift
    cp "$staging"/*.swift "$output_dir"/
    rm -rf "$staging"
    echo "generate-grpc: wrote $(cd "$output_dir" && ls ./*.swift | sed 's|^\./||' | tr '\n' ' ')"
}
generate "$repo/Sources/FisoGRPC/Generated" "${grpc_proto_files[@]}"
generate "$repo/Sources/FisoTemporal/Generated" "${temporal_proto_files[@]}"
