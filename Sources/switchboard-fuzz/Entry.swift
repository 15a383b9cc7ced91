// The fuzz driver. Built by scripts/fuzz.sh with `-sanitize=fuzzer,address -DFUZZING`, its
// entry point hands over to libFuzzer's driver, which calls `fuzzOne` with each input for the
// target named by SWITCHBOARD_FUZZ_TARGET. Built normally, it replays files through a target instead
// (`switchboard-fuzz TARGET FILE_OR_DIR…`), which is how a crash is reproduced without the
// sanitizer build.

import Foundation
import SwitchboardFuzzing

#if FUZZING
import CFuzzer

let fuzzTarget: String = {
    let name = ProcessInfo.processInfo.environment["SWITCHBOARD_FUZZ_TARGET"] ?? ""
    guard FuzzTargets.names.contains(name) else {
        FileHandle.standardError.write(Data("set SWITCHBOARD_FUZZ_TARGET to one of: \(FuzzTargets.names.joined(separator: ", "))\n".utf8))
        exit(2)
    }
    return name
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let bytes = start.map { Array(UnsafeBufferPointer(start: $0, count: count)) } ?? []
    FuzzTargets.run(fuzzTarget, bytes)
    return 0
}

// SwiftPM links the executable's `main` to this name.
@_cdecl("switchboard_fuzz_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var arguments = argv
    return LLVMFuzzerRunDriver(&count, &arguments) { start, size in fuzzOne(start, size) }
}
#else
@main
struct Replay {
    static func main() throws {
        let arguments = Array(CommandLine.arguments.dropFirst())
        guard let target = arguments.first, FuzzTargets.names.contains(target), arguments.count > 1 else {
            FileHandle.standardError.write(Data("usage: switchboard-fuzz TARGET FILE_OR_DIRECTORY…   (targets: \(FuzzTargets.names.joined(separator: ", ")))\n".utf8))
            exit(2)
        }
        var count = 0
        for path in arguments.dropFirst() {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                FileHandle.standardError.write(Data("no such file: \(path)\n".utf8))
                exit(2)
            }
            let files = isDirectory.boolValue
                ? try FileManager.default.contentsOfDirectory(atPath: path).sorted().map { path + "/" + $0 }
                : [path]
            for file in files {
                FuzzTargets.run(target, Array(try Data(contentsOf: URL(fileURLWithPath: file))))
                count += 1
            }
        }
        print("\(target): \(count) inputs, no invariant broken")
    }
}
#endif
