// The fuzz targets' seed corpora, and every input a fuzzing run found and that was fixed
// (Fuzz/regressions/TARGET/), replayed through the same targets on every test run: a parser
// change that breaks one of their invariants fails here, without the sanitizer build.

import SwitchboardModel
import Foundation
import SwitchboardFuzzing
import Testing

@Suite("Fuzz corpora")
struct FuzzCorpusTests {
    final class Findings: Sendable {
        let list = Locked<[String]>([])
    }

    static func files(_ directory: String) throws -> [String] {
        guard FileManager.default.fileExists(atPath: directory) else { return [] }
        return try FileManager.default.contentsOfDirectory(atPath: directory).sorted().map { directory + "/" + $0 }
    }

    @Test("Every seed and regression input goes through its target with every invariant kept", arguments: FuzzTargets.names)
    func replay(_ target: String) throws {
        let seeds = try Self.files(packageRoot + "/Fuzz/corpus/" + target)
        #expect(seeds.count >= 4, "Fuzz/corpus/\(target) holds \(seeds.count) seeds; scripts/fuzz.sh starts from them")
        let inputs = seeds + (try Self.files(packageRoot + "/Fuzz/regressions/" + target))
        let findings = Findings()
        FuzzTargets.$reporter.withValue({ message in findings.list.withLock { $0.append(message) } }) {
            for path in inputs {
                guard let data = FileManager.default.contents(atPath: path) else { continue }
                let before = findings.list.withLock { $0.count }
                #expect(FuzzTargets.run(target, Array(data)))
                findings.list.withLock { list in
                    for index in before..<list.count { list[index] = "\(path): \(list[index])" }
                }
            }
        }
        #expect(findings.list.withLock { $0 } == [], "broken invariants")
    }

    @Test("An unknown target is refused, not run")
    func unknownTarget() {
        #expect(!FuzzTargets.run("no-such-target", Array("{}".utf8)))
        #expect(FuzzTargets.names.count == 8)
    }
}
