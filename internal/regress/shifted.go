package regress

import "strings"

// CompareServiceShifted compares arms that cover different times, such as
// the previous version before a rollout and the new one after it, or the
// same window a day earlier. Drift between the two windows (time of day,
// traffic mix) is not the deploy's, so a regression needs the wide
// thresholds (normally narrow.ForOffset()); but a change that the narrow,
// same-window thresholds call large may be the deploy's just as well, so a
// pass needs the narrow ones. Between the two the verdict is inconclusive:
// time-shifted data cannot tell such a change from drift either way.
//
// The result is CompareService's with the wide thresholds, whose pass
// becomes inconclusive unless CompareService with the narrow thresholds
// passes too. Both spend the same look's α; a regression verdict comes
// from the wide comparison alone, so the false-failure rate is the wide
// comparison's.
func CompareServiceShifted(ops []Operation, narrow, wide Thresholds, look Look) ServiceResult {
	res := CompareService(ops, wide, look)
	if res.Verdict != Pass {
		return res
	}
	n := CompareService(ops, narrow, look)
	if n.Verdict == Pass {
		return res
	}
	why := strings.TrimPrefix(strings.TrimPrefix(n.Reason, "regression: "), "inconclusive: ")
	reason := "inconclusive: no change reaches the time-shifted thresholds, but the windows cover different times and by the same-window thresholds " +
		why + "; drift between the windows cannot be told from the deploy's change"
	res.Verdict, res.Reason = Inconclusive, reason
	res.Service.Verdict, res.Service.Reason = Inconclusive, reason
	return res
}
