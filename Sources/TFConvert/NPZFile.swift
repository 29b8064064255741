import TFCore

/// `.npz` archives (numpy `savez`): one `.npy` array per entry, named by the entry without
/// `.npy`. Shapes come from the headers; values are read on demand.
public enum NPZFile {
    /// The arrays in archive order.
    public static func load(_ archive: ZipArchive) throws -> [(name: String, tensor: SourceTensor)] {
        var out: [(String, SourceTensor)] = []
        for entry in archive.names where entry.hasSuffix(".npy") {
            let name = String(entry.dropLast(4))
            let head = try archive.readPrefix(entry, count: 65_536 + 12)
            let h: Header
            do { h = try parseHeader(head) } catch let e as TransFaceError {
                throw TransFaceError.format("'\(archive.path)': array '\(name)' is not a valid .npy: \(e.message)")
            }
            out.append((name, SourceTensor(shape: h.shape, dtype: h.dtype) {
                let raw = try archive.read(entry)
                let item = SourceTensor.itemSize(h.dtype)
                let count = try checkedProduct(h.shape, what: "array '\(name)'")
                guard item > 0, raw.count - h.dataOffset >= count * item else {
                    throw TransFaceError.format("array '\(name)': \(raw.count - h.dataOffset) data bytes for \(count) elements of \(h.dtype)")
                }
                // Fortran order: strides grow from the first dimension
                var stride = [Int](repeating: 1, count: h.shape.count), acc = 1
                for d in (h.fortran ? Array(h.shape.indices) : h.shape.indices.reversed()) { stride[d] = acc; acc *= h.shape[d] }
                return SourceTensor.gather(Array(raw[h.dataOffset...]), itemSize: item, offset: 0, shape: h.shape, stride: stride,
                                           swap: h.bigEndian && item > 1)
            }))
        }
        return out
    }

    struct Header {
        var dtype: String
        var bigEndian: Bool
        var fortran: Bool
        var shape: [Int]
        var dataOffset: Int
    }

    /// Parses the `.npy` magic and header dict (`{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }`).
    static func parseHeader(_ b: [UInt8]) throws -> Header {
        guard b.count >= 10, b[0..<6].elementsEqual([0x93] + Array("NUMPY".utf8)) else { throw TransFaceError.format("bad magic") }
        let major = b[6]
        let lengthBytes = major == 1 ? 2 : 4
        guard (1...3).contains(major), b.count >= 8 + lengthBytes else { throw TransFaceError.format("unsupported version \(major)") }
        var length = 0
        for i in 0..<lengthBytes { length |= Int(b[8 + i]) << (8 * i) }
        let start = 8 + lengthBytes
        guard b.count >= start + length else { throw TransFaceError.format("truncated header") }
        let text = String(decoding: b[start..<(start + length)], as: UTF8.self)
        func value(_ key: String) throws -> Substring {
            guard let r = text.firstRange(of: "'\(key)':") else { throw TransFaceError.format("header has no '\(key)'") }
            return text[r.upperBound...].drop { $0 == " " }
        }
        let descrRest = try value("descr")
        guard descrRest.first == "'", let end = descrRest.dropFirst().firstIndex(of: "'") else { throw TransFaceError.format("unsupported descr") }
        let descr = String(descrRest[descrRest.index(after: descrRest.startIndex)..<end])
        let fortran = try value("fortran_order").hasPrefix("True")
        let shapeRest = try value("shape")
        guard shapeRest.first == "(", let close = shapeRest.firstIndex(of: ")") else { throw TransFaceError.format("bad shape") }
        let shape = try shapeRest[shapeRest.index(after: shapeRest.startIndex)..<close].split(separator: ",")
            .map { $0.filter { $0 != " " && $0 != "L" } }.filter { !$0.isEmpty }.map { (s: String) -> Int in
                guard let d = Int(s), d >= 0 else { throw TransFaceError.format("bad shape entry '\(s.prefix(20))'") }
                return d
            }
        let kinds: [String: String] = ["f4": "float32", "f2": "float16", "f8": "float64", "i8": "int64", "i4": "int32",
                                       "i2": "int16", "i1": "int8", "u1": "uint8", "b1": "bool", "u2": "uint16", "u4": "uint32", "u8": "uint64"]
        guard descr.count == 3, let dtype = kinds[String(descr.dropFirst())] else {
            return Header(dtype: descr, bigEndian: false, fortran: fortran, shape: shape, dataOffset: start + length)
        }
        return Header(dtype: dtype, bigEndian: descr.first == ">", fortran: fortran, shape: shape, dataOffset: start + length)
    }
}
