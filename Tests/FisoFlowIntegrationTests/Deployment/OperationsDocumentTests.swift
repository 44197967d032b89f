import FisoFlowTestSupport
import Foundation
import Testing

/// docs/operations.md stays true of the code: every message of its troubleshooting table is one
/// the runtime prints, and its metric and environment tables list what the runtime has.
@Suite struct OperationsDocumentTests {
    static func document() throws -> String {
        try String(contentsOfFile: Repository.path("docs/operations.md"), encoding: .utf8)
    }

    /// All Swift source of the product, to search for message text.
    static func productSource() throws -> String {
        let root = Repository.path("Sources")
        var text = ""
        let enumerator = FileManager.default.enumerator(atPath: root)
        while let file = enumerator?.nextObject() as? String {
            guard file.hasSuffix(".swift"), !file.hasPrefix("FisoBenchmarks") else { continue }
            text += try String(contentsOfFile: root + "/" + file, encoding: .utf8)
        }
        return text
    }

    /// The rows of the table under `## Troubleshooting`: first cell of each.
    static func troubleshootingMessages(_ document: String) -> [[String]] {
        guard let start = document.range(of: "## Troubleshooting") else { return [] }
        var rows: [[String]] = []
        for line in document[start.upperBound...].split(separator: "\n") where line.hasPrefix("| `") {
            let cell = line.dropFirst(2).prefix { $0 != "|" }
            if line.contains("(from `kubectl`)") { continue }
            rows.append(cell.matches(of: /`([^`]+)`/).map { String($0.output.1) })
        }
        return rows
    }

    /// The literal start of a message: up to its first placeholder or log metadata.
    static func literalPrefix(_ text: String) -> String {
        var end = text.endIndex
        for marker in ["path=", "error=", "code=", "<", "…", "("] {
            if let range = text.range(of: marker), range.lowerBound < end { end = range.lowerBound }
        }
        return String(text[..<end]).trimmingCharacters(in: .whitespaces)
    }

    @Test func everyTroubleshootingMessageIsPrintedByTheRuntime() throws {
        let source = try Self.productSource()
        let rows = Self.troubleshootingMessages(try Self.document())
        #expect(rows.count >= 15)
        for messages in rows {
            #expect(!messages.isEmpty)
            for message in messages {
                let prefix = Self.literalPrefix(message)
                if !prefix.isEmpty {
                    let printed = source.contains(prefix)
                    #expect(printed, "\"\(prefix)\" (docs/operations.md) is printed nowhere in Sources/")
                }
                // The error text of `… error="wasm: exit code 1"` too.
                if let quoted = message.firstMatch(of: /error="([^"]+)"/) {
                    let text = String(quoted.output.1)
                    let literal = String(text.prefix { !$0.isNumber && $0 != "…" && $0 != "<" })
                    let printed = source.contains(literal)
                    #expect(printed, "\"\(literal)\" (docs/operations.md) is printed nowhere in Sources/")
                }
            }
        }
    }

    @Test func metricTableListsEveryExportedMetric() throws {
        let document = try Self.document()
        let metrics = try MonitoringAssetTests.ExportedMetrics()
        for name in metrics.names.keys {
            #expect(document.contains("| `\(name)` |"), "docs/operations.md does not describe \(name)")
        }
        for listed in document.matches(of: /\| `(fiso_flow_[a-z_]+)` \|/) {
            #expect(metrics.exports(String(listed.output.1)), "\(listed.output.1) is not exported")
        }
    }

    @Test func environmentTableListsWhatTheBinaryReads() throws {
        let help = try runTool(try fisoFlowBinary(), ["run", "--help"])
        let variables = Set(
            help.text.split(whereSeparator: { !$0.isLetter && !$0.isNumber && $0 != "_" })
                .map(String.init).filter { $0.hasPrefix("FISO_") || $0 == "LOG_FORMAT" }
        )
        #expect(variables.count >= 7)
        let document = try Self.document()
        for variable in variables {
            #expect(document.contains("| `\(variable)` |"), "docs/operations.md does not describe \(variable)")
        }
    }
}
