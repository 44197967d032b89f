import FisoFlowTestSupport
import Foundation
import Testing

/// scripts/image-layout.sh — the file tree the container image adds — run with the binary under
/// test: the laid-out binary must start from the image's paths and serve /readyz with the
/// example flow (as user 65532 on read-only filesystems when the test runs as root).
@Suite struct ImageLayoutTests {
    @Test func laidOutImageServesReadyzWithTheExampleFlow() throws {
        // Under the repository (ignored by git): the check's read-only sandbox hides /tmp.
        let out = Repository.path(".build-image/test-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(atPath: out) }
        let result = try runTool(
            Repository.path("scripts/image-layout.sh"),
            ["--binary", try fisoFlowBinary(), "--out", out + "/rootfs", "--check"]
        )
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("check passed"), "\(result.stderr)")
        #expect(result.stderr.contains("\"status\":\"ready\""), "\(result.stderr)")
        let manager = FileManager.default
        for path in [
            "usr/local/bin/fiso-flow", "etc/fiso/flows/quickstart.yaml", "etc/fiso/modules/enrich.wasm",
            "usr/share/fiso-flow/modules/enrich-go/enrich.wasm", "usr/share/fiso-flow/runtime-libraries.txt",
        ] {
            #expect(manager.fileExists(atPath: "\(out)/rootfs/\(path)"), "\(path)")
        }
        let flow = try String(contentsOfFile: "\(out)/rootfs/etc/fiso/flows/quickstart.yaml", encoding: .utf8)
        #expect(flow.contains("module: /etc/fiso/modules/enrich.wasm"))
        let libraries = try String(
            contentsOfFile: "\(out)/rootfs/usr/share/fiso-flow/runtime-libraries.txt", encoding: .utf8)
        #expect(libraries.contains("librdkafka.so.1"))
    }
}
