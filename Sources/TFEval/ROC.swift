import TFCore

/// A ROC curve of similarity scores (higher = more alike), as `sklearn.metrics.roc_curve`
/// computes it: scores sorted descending, one point per distinct score (accept iff
/// `score >= threshold`), collinear intermediate points dropped (`drop_intermediate=True`, the
/// default the IJB scripts use), and a first point `(0, 0)` at threshold `+inf`.
public struct ROCCurve: Equatable {
    public var fpr: [Double]
    public var tpr: [Double]
    public var thresholds: [Double]
    public var positives: Int
    public var negatives: Int

    public var count: Int { fpr.count }

    public init(scores: [Double], labels: [Bool], dropIntermediate: Bool = true) throws {
        let n = scores.count
        try require(n >= 1, "no scores")
        try require(labels.count == n, "\(n) scores but \(labels.count) labels")
        try require(scores.allSatisfy { $0.isFinite }, "scores must be finite")
        // np.argsort(score, kind="mergesort")[::-1]
        let order = (0..<n).sorted { scores[$0] < scores[$1] || (scores[$0] == scores[$1] && $0 < $1) }.reversed()
        let s = order.map { scores[$0] }, y = order.map { labels[$0] }
        var tps: [Int] = [], fps: [Int] = [], th: [Double] = []
        var cum = 0
        for i in 0..<n {
            if y[i] { cum += 1 }
            if i == n - 1 || s[i + 1] != s[i] {
                tps.append(cum); fps.append(i + 1 - cum); th.append(s[i])
            }
        }
        if dropIntermediate && fps.count > 2 {
            var keep = [0]
            for i in 1..<(fps.count - 1) {
                let d2f = fps[i + 1] - 2 * fps[i] + fps[i - 1], d2t = tps[i + 1] - 2 * tps[i] + tps[i - 1]
                if d2f != 0 || d2t != 0 { keep.append(i) }
            }
            keep.append(fps.count - 1)
            tps = keep.map { tps[$0] }; fps = keep.map { fps[$0] }; th = keep.map { th[$0] }
        }
        tps.insert(0, at: 0); fps.insert(0, at: 0); th.insert(.infinity, at: 0)
        positives = tps.last!
        negatives = fps.last!
        let p = Double(positives), q = Double(negatives)
        fpr = fps.map { Double($0) / q }  // NaN without negatives, as sklearn (which warns)
        tpr = tps.map { Double($0) / p }
        thresholds = th
    }

    public init(fpr: [Double], tpr: [Double], thresholds: [Double], positives: Int, negatives: Int) {
        self.fpr = fpr; self.tpr = tpr; self.thresholds = thresholds; self.positives = positives; self.negatives = negatives
    }

    /// Area under the curve (`sklearn.metrics.auc`: trapezoids over fpr).
    public var auc: Double {
        var a = 0.0
        for i in 1..<max(count, 1) { a += (fpr[i] - fpr[i - 1]) * (tpr[i] + tpr[i - 1]) / 2 }
        return a
    }

    public enum Convention {
        /// insightface `eval_ijbc.py`: the point whose FPR is closest to the target
        /// (`min(zip(abs(fpr - x), range(len(fpr))))` on the flipped curve, so among equally close
        /// points the one with the largest TPR). May pick a point with FPR above the target.
        case closest
        /// The last point with FPR ≤ target (the largest TPR not exceeding the target FAR).
        case atMost
    }

    /// TAR (TPR) at a target FAR, and the score threshold of that point (accept iff
    /// `score >= threshold`; +inf for the (0, 0) point).
    public func tar(atFAR target: Double, convention: Convention = .closest) -> (tar: Double, threshold: Double, index: Int) {
        var best = 0
        switch convention {
        case .closest:
            var bestDiff = Double.infinity
            // flipped order: index count-1 first; keep the first minimum
            for i in stride(from: count - 1, through: 0, by: -1) {
                let d = abs(fpr[i] - target)
                if d < bestDiff { bestDiff = d; best = i }
            }
        case .atMost:
            for i in 0..<count where fpr[i] <= target { best = i }
        }
        return (tpr[best], thresholds[best], best)
    }

    /// The FARs insightface reports for IJB-B/C: 1e-6 ... 1e-1.
    public static let standardFARs: [Double] = [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1]
}

/// TAR@FAR results of one method (a curve and its table), with text writers.
public struct TARReport {
    public var name: String
    public var curve: ROCCurve
    public var fars: [Double]
    public var tars: [Double]
    public var thresholds: [Double]

    /// With the `.closest` convention the curve drops collinear points as sklearn does (the
    /// official numbers depend on it); with `.atMost` every distinct threshold is kept, so the
    /// last point under the target is never a dropped one.
    public init(name: String = "model", scores: [Double], labels: [Bool], fars: [Double] = ROCCurve.standardFARs,
                convention: ROCCurve.Convention = .closest) throws {
        try self.init(name: name, curve: try ROCCurve(scores: scores, labels: labels, dropIntermediate: convention == .closest),
                      fars: fars, convention: convention)
    }

    public init(name: String, curve: ROCCurve, fars: [Double], convention: ROCCurve.Convention = .closest) throws {
        try require(fars.allSatisfy { $0.isFinite && $0 >= 0 && $0 <= 1 }, "target FARs must be in [0, 1]")
        self.name = name
        self.curve = curve
        self.fars = fars
        let r = fars.map { curve.tar(atFAR: $0, convention: convention) }
        tars = r.map(\.tar)
        thresholds = r.map(\.threshold)
    }

    /// `threshold,fpr,tpr` rows of the curve (threshold `inf` for the first point).
    public var curveCSV: String {
        var s = "threshold,fpr,tpr\n"
        for i in 0..<curve.count { s += "\(TextFormat.number(curve.thresholds[i])),\(TextFormat.number(curve.fpr[i])),\(TextFormat.number(curve.tpr[i]))\n" }
        return s
    }

    /// `far,tar,threshold` rows of the table.
    public var tableCSV: String {
        var s = "far,tar,threshold\n"
        for i in 0..<fars.count { s += "\(TextFormat.number(fars[i])),\(TextFormat.number(tars[i])),\(TextFormat.number(thresholds[i]))\n" }
        return s
    }

    /// JSON object with the table, the AUC and the curve (non-finite numbers as null).
    public var json: String {
        func arr(_ a: [Double]) -> String { "[" + a.map(TextFormat.jsonNumber).joined(separator: ", ") + "]" }
        return """
        {"name": \(JSONText.quoted(name)), "positives": \(curve.positives), "negatives": \(curve.negatives), \
        "auc": \(TextFormat.jsonNumber(curve.auc)), "fars": \(arr(fars)), "tars": \(arr(tars)), \
        "thresholds": \(arr(thresholds)), "curve": {"fpr": \(arr(curve.fpr)), "tpr": \(arr(curve.tpr)), \
        "thresholds": \(arr(curve.thresholds))}}
        """
    }
}

/// An SVG plot of ROC curves on a log FPR axis (1e-6 ... 1) with the TAR@FAR table under it.
public enum ROCPlot {
    public static func svg(_ reports: [TARReport], title: String = "ROC", minFAR: Double = 1e-6) -> String {
        let width = 640.0, plotH = 400.0, left = 70.0, top = 40.0, right = 20.0
        let plotW = width - left - right
        let rowH = 18.0
        let tableTop = top + plotH + 50
        let height = tableTop + rowH * Double(reports.count + 1) + 20
        let lo = log10(minFAR)
        func px(_ fpr: Double) -> Double { left + (log10(max(fpr, minFAR)) - lo) / (0 - lo) * plotW }
        func py(_ tpr: Double) -> Double { top + (1 - tpr) * plotH }
        let colors = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]
        var s = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" font-family="sans-serif" font-size="12">
        <rect width="100%" height="100%" fill="white"/>
        <text x="\(TextFormat.fixed(width / 2, 1))" y="22" text-anchor="middle" font-size="15">\(TextFormat.xml(title))</text>

        """
        // grid and axes
        var decade = Int(lo.rounded(.down))
        while decade <= 0 {
            let x = px(pow10(decade))
            s += "<line x1=\"\(TextFormat.fixed(x, 2))\" y1=\"\(top)\" x2=\"\(TextFormat.fixed(x, 2))\" y2=\"\(top + plotH)\" stroke=\"#ddd\"/>\n"
            s += "<text x=\"\(TextFormat.fixed(x, 2))\" y=\"\(top + plotH + 16)\" text-anchor=\"middle\">1e\(decade)</text>\n"
            decade += 1
        }
        for k in 0...10 {
            let y = py(Double(k) / 10)
            s += "<line x1=\"\(left)\" y1=\"\(TextFormat.fixed(y, 2))\" x2=\"\(left + plotW)\" y2=\"\(TextFormat.fixed(y, 2))\" stroke=\"#ddd\"/>\n"
            s += "<text x=\"\(left - 6)\" y=\"\(TextFormat.fixed(y + 4, 2))\" text-anchor=\"end\">\(TextFormat.fixed(Double(k) / 10, 1))</text>\n"
        }
        s += "<rect x=\"\(left)\" y=\"\(top)\" width=\"\(plotW)\" height=\"\(plotH)\" fill=\"none\" stroke=\"black\"/>\n"
        s += "<text x=\"\(TextFormat.fixed(left + plotW / 2, 1))\" y=\"\(top + plotH + 34)\" text-anchor=\"middle\">False Positive Rate (log scale)</text>\n"
        s += "<text transform=\"translate(18 \(TextFormat.fixed(top + plotH / 2, 1))) rotate(-90)\" text-anchor=\"middle\">True Positive Rate</text>\n"
        for (r, report) in reports.enumerated() {
            let c = report.curve
            var points: [String] = []
            for i in 0..<c.count where c.fpr[i].isFinite && c.tpr[i].isFinite {
                points.append("\(TextFormat.fixed(px(c.fpr[i]), 2)),\(TextFormat.fixed(py(c.tpr[i]), 2))")
            }
            s += "<polyline fill=\"none\" stroke=\"\(colors[r % colors.count])\" stroke-width=\"1.5\" points=\"\(points.joined(separator: " "))\"/>\n"
            s += "<text x=\"\(left + plotW - 8)\" y=\"\(TextFormat.fixed(top + plotH - 10 - rowH * Double(reports.count - 1 - r), 1))\" text-anchor=\"end\" fill=\"\(colors[r % colors.count])\">\(TextFormat.xml(report.name)) (AUC \(TextFormat.fixed(c.auc * 100, 2))%)</text>\n"
        }
        // table: TAR (%) at each FAR
        let fars = reports.first?.fars ?? []
        let colW = (width - left - 140) / Double(max(fars.count, 1))
        s += "<text x=\"\(left)\" y=\"\(tableTop)\" font-weight=\"bold\">TAR@FAR (%)</text>\n"
        for (j, f) in fars.enumerated() {
            s += "<text x=\"\(TextFormat.fixed(left + 140 + colW * Double(j), 1))\" y=\"\(tableTop)\" font-weight=\"bold\">\(TextFormat.number(f))</text>\n"
        }
        for (r, report) in reports.enumerated() {
            let y = tableTop + rowH * Double(r + 1)
            s += "<text x=\"\(left)\" y=\"\(y)\" fill=\"\(colors[r % colors.count])\">\(TextFormat.xml(report.name))</text>\n"
            for (j, t) in report.tars.enumerated() {
                s += "<text x=\"\(TextFormat.fixed(left + 140 + colW * Double(j), 1))\" y=\"\(y)\">\(TextFormat.fixed(t * 100, 2))</text>\n"
            }
        }
        s += "</svg>\n"
        return s
    }

    static func pow10(_ e: Int) -> Double {
        var v = 1.0
        if e >= 0 { for _ in 0..<e { v *= 10 } } else { for _ in 0..<(-e) { v /= 10 } }
        return v
    }
}

#if canImport(Glibc)
import Glibc
#endif

/// Number and text formatting without Foundation.
public enum TextFormat {
    /// Shortest round-trip text ("0.001", "1e-06", "inf", "nan").
    public static func number(_ x: Double) -> String {
        if x.isNaN { return "nan" }
        if x.isInfinite { return x > 0 ? "inf" : "-inf" }
        return "\(x)"
    }

    public static func jsonNumber(_ x: Double) -> String { x.isFinite ? "\(x)" : "null" }

    /// `x` with `digits` decimals (rounded half away from zero).
    public static func fixed(_ x: Double, _ digits: Int) -> String {
        guard x.isFinite else { return number(x) }
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let v = (abs(x) * scale).rounded()
        guard v < 9e15 else { return number(x) }
        let i = Int(v)
        var frac = String(i % Int(scale))
        while frac.count < digits { frac = "0" + frac }
        let sign = x < 0 && i != 0 ? "-" : ""
        return digits == 0 ? "\(sign)\(i)" : "\(sign)\(i / Int(scale)).\(frac)"
    }

    public static func xml(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.append(c)
            }
        }
        return out
    }
}
