import FisoCEL
import FisoCELConformance
import FisoJSON
import Foundation
import Testing

/// Runs the shared CEL conformance suite and asserts the tier targets: every `core` and
/// `ext_recommended` case passes, and at least 90% of `ext_optional` cases.
@Suite("CEL conformance suite")
struct ConformanceTests {
    static let directory: String? = {
        let candidates: [String?] = [
            ProcessInfo.processInfo.environment["CEL_CONFORMANCE_DIR"],
            "../shared/cel-conformance",
            URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
                "../../../shared/cel-conformance"
            ).standardized.path,
            "/work/shared/cel-conformance",
        ]
        return candidates.compactMap { $0 }.first { FileManager.default.fileExists(atPath: $0 + "/tiers.json") }
    }()

    @Test(
        "tier targets", .enabled(if: directory != nil, "the conformance cases (../shared/cel-conformance) are absent"))
    func tiers() throws {
        let root = try #require(Self.directory)
        let tiers = try JSONValue(parsing: try String(contentsOfFile: root + "/tiers.json", encoding: .utf8))
        let requirements: [(tier: String, minimum: Double)] = [
            ("core", 1.0), ("ext_recommended", 1.0), ("ext_optional", 0.9),
        ]
        for (tier, minimum) in requirements {
            guard case .array(let names)? = tiers[tier] else {
                Issue.record("tiers.json has no '\(tier)' list")
                continue
            }
            var passed = 0
            var total = 0
            var failures: [String] = []
            for case .string(let name) in names {
                let text = try String(contentsOfFile: "\(root)/\(name).jsonl", encoding: .utf8)
                for outcome in try CELConformanceRunner.cases(inJSONLines: text).map(CELConformanceRunner.run)
                where outcome.counted {
                    total += 1
                    if outcome.passed {
                        passed += 1
                    } else {
                        failures.append("\(outcome.id): expected \(outcome.expected), got \(outcome.actual)")
                    }
                }
            }
            #expect(total > 0, "no cases in tier \(tier)")
            let score = Double(passed) / Double(max(total, 1))
            #expect(
                score >= minimum, "\(tier): \(passed)/\(total) passed; failures:\n\(failures.joined(separator: "\n"))")
        }
    }

    @Test("the runner reads tagged values and compares strictly")
    func runnerDetectsMismatches() throws {
        let line =
            #"{"file":"t","id":"t/s/n","expr":"1 + 1","type_env":[],"bindings":{},"result":{"kind":"value","value":{"uint64":"2"}}}"#
        let cases = try CELConformanceRunner.cases(inJSONLines: line)
        let outcome = CELConformanceRunner.run(try #require(cases.first))
        #expect(outcome.counted)
        #expect(!outcome.passed)  // 2 (int) is not 2u
        let errorLine =
            #"{"file":"t","id":"t/s/e","expr":"x / 0","type_env":[{"name":"x","kind":"ident","type":"int"}],"bindings":{"x":{"int64":"1"}},"result":{"kind":"eval_error","errors":[]}}"#
        #expect(
            CELConformanceRunner.run(try #require(try CELConformanceRunner.cases(inJSONLines: errorLine).first)).passed)
    }
}
