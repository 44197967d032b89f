import ArgumentParser
import FisoCEL
import FisoCELConformance
import FisoJSON
import Foundation

/// Runs the CEL conformance suite (JSON lines) against FisoCEL and prints a score per file.
@main
struct CELConformanceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cel-conformance",
        abstract: "Run the CEL conformance cases (JSON lines) against FisoCEL.",
        discussion: """
            Prints one line per file, `FILE: PASSED/TOTAL`, then `N passed, M failed`. Exits 0 whatever \
            the score; the test suite asserts the targets.
            """
    )

    @Argument(help: "Directory of *.jsonl case files (default: $CEL_CONFORMANCE_DIR, else ../shared/cel-conformance).")
    var directory: String?

    @Option(name: .customLong("json"), help: "Write a JSON array with one object per case to this path.")
    var jsonPath: String?

    @Flag(help: "List failing cases with expected and actual outcomes.")
    var failures = false

    func run() throws {
        let environment = ProcessInfo.processInfo.environment
        let root = directory ?? environment["CEL_CONFORMANCE_DIR"] ?? "../shared/cel-conformance"
        let files: [String]
        do {
            files = try FileManager.default.contentsOfDirectory(atPath: root).filter { $0.hasSuffix(".jsonl") }.sorted()
        } catch {
            throw ValidationError("cannot read the conformance directory '\(root)': \(error.localizedDescription)")
        }
        var outcomes: [CELConformanceOutcome] = []
        var passed = 0
        var failed = 0
        for file in files {
            let path = (root as NSString).appendingPathComponent(file)
            let text: String
            do {
                text = try String(contentsOfFile: path, encoding: .utf8)
            } catch {
                throw ValidationError("cannot read '\(path)': \(error.localizedDescription)")
            }
            let cases: [CELConformanceCase]
            do {
                cases = try CELConformanceRunner.cases(inJSONLines: text)
            } catch {
                throw ValidationError("\(file): \(error.message)")
            }
            let results = cases.map(CELConformanceRunner.run).filter(\.counted)
            let filePassed = results.filter(\.passed).count
            passed += filePassed
            failed += results.count - filePassed
            outcomes += results
            print("\(file): \(filePassed)/\(results.count)")
        }
        if failures {
            for outcome in outcomes where !outcome.passed {
                print(
                    "FAIL \(outcome.id)\n  expr:     \(outcome.expression)\n  expected: \(outcome.expected)\n  actual:   \(outcome.actual)"
                )
            }
        }
        if let jsonPath {
            let document = JSONValue.array(outcomes.map(\.jsonValue))
            try Data(document.serialized()).write(to: URL(fileURLWithPath: jsonPath))
        }
        print("\(passed) passed, \(failed) failed")
    }
}
