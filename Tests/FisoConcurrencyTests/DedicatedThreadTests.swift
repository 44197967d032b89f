import FisoConcurrency
import Foundation
import Testing

@Suite struct DedicatedThreadTests {
    @Test func runsTheBodyOnAThreadOfItsOwnThatTheSystemKnowsByName() async throws {
        let seen = AsyncSignal<(name: String, isMain: Bool)>()
        DedicatedThread.start(name: "fiso-test-thread", stackSize: 4 << 20) {
            // The kernel's name of the calling thread (Linux keeps the first 15 bytes).
            let name = (try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8)) ?? ""
            seen.fire((name.trimmingCharacters(in: .whitespacesAndNewlines), Thread.isMainThread))
        }
        let result = try await seen.wait()
        #expect(result.name == "fiso-test-threa")
        #expect(!result.isMain)
    }
}
