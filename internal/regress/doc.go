// Package regress decides whether a deploy made a service slower or less
// reliable: it compares a candidate (the new version) with a baseline (the
// old version, ideally in the same window) and returns pass, regression or
// inconclusive with the evidence for each check.
//
// It owns the statistics only: pure functions over histogram bucket counts
// and call/error counts (float64 slices). It does no I/O, knows no
// Prometheus client or PromQL, and never reads a clock; internal/gate
// queries the data, waits, and reports.
//
// # Input
//
// Each arm is a latency Histogram (classic buckets, or a native histogram
// converted to bucket upper edges, which is far more precise) plus request
// and error counts. Counts from increase() are rounded to the nearest
// integer and never negative. Histograms of two arms with different bounds
// are merged onto the finest grid on which both are known exactly: a bound
// is kept unless the other histogram has requests in a bucket straddling
// it.
//
// # Checks
//
//   - p50 (body): the one-sided Mann–Whitney U test on the binned data.
//     Requests in one bucket are ties with a common midrank; the variance is
//     tie-corrected, σ² = n₁n₂/12 · [(N+1) − Σ(t³−t)/(N(N−1))], with the
//     continuity correction of R and SciPy. The common-language effect size
//     P(candidate slower) + ½P(tie) is reported. Mann–Whitney misses changes
//     of spread or tail alone, hence:
//   - p95, p99 (tail): the exceedance test. With e the upper edge of the
//     baseline bucket holding its q-quantile, the shares of requests above e
//     are compared one-sided, with Fisher's exact test when a cell of the
//     2×2 table is below 10 and the pooled two-proportion z-test otherwise.
//   - errors: the same one-sided proportion test on errors/requests, so a
//     rate from zero or a handful of errors is never thresholded alone.
//   - traffic (CompareService, when the expected split is known): a
//     chi-square test of the arms' request counts against the expected
//     candidate share. A sample-ratio mismatch (often crash-looping or
//     unrouted pods) makes a pass inconclusive.
//
// Quantiles are computed as Prometheus's histogram_quantile computes them
// (linear interpolation within the bucket). Their confidence intervals are
// order-statistic intervals read off at bucket edges (QuantileCI), so they
// are never narrower than a bucket; when both ends fall in one bucket the
// finding says "resolution-limited" rather than inventing precision. The
// candidate/baseline ratio interval combines the two arms' intervals
// conservatively (RatioCI).
//
// # Decision
//
// A check fails (regression) only when it is both statistically significant
// and practically large. Significant: its Holm-adjusted p-value, over the
// gated checks of the comparison, is at most the error rate available at
// this look (Thresholds.Alpha, 0.01, for a single look). Large: quantile
// ratio ≥ 1.10 (P50, P95) or ≥ 1.20 (P99) and an absolute increase of at
// least max(5 ms, the width of the baseline bucket holding the quantile);
// error rate up by ≥ 0.5 percentage points and ≥ 2×. A check is gated only
// when both arms have enough requests (30 for P50 and errors, 200 for P95,
// 1000 for P99: about ten expected requests beyond the quantile) and it can
// be tested (the baseline quantile is not in the +Inf bucket). The verdict
// is Regression if any check is a regression; Pass if every check is gated
// and none would be a regression even at the full α; Inconclusive
// otherwise. An arm without traffic, missing
// latency data or invalid input is inconclusive: missing data never passes.
// The zero Verdict is Inconclusive.
//
// CompareService gates on the service as a whole (all operations summed).
// Per-operation findings explain the verdict: their p-values are adjusted
// with Benjamini–Hochberg across operations and checks (false-discovery
// rate Thresholds.FDR, 0.05), and operations are ranked by impact (latency
// increase × requests) so that low-traffic endpoints do not dominate.
//
// # Repeated looks
//
// The gate evaluates every poll interval until a verdict or its deadline.
// Testing each look at α would inflate false failures (20 looks at 0.01 fail
// a no-change deploy far more than 1 % of the time). This package uses alpha
// spending: with K planned looks (max-wait / poll interval) and the
// Lan–DeMets spending function of O'Brien–Fleming shape,
// α(t) = 2 − 2Φ(z_{1−α/2}/√t), look k may spend α(k/K) − α((k−1)/K), and
// the Holm procedure of that look runs at this level (LookAlpha). The
// increments sum to α, so by a Bonferroni argument over looks the chance of
// any false regression stays ≤ α whatever the dependence between looks. It
// is conservative compared with group-sequential boundaries that model the
// correlation of cumulative data (and with anytime-valid tests such as
// mSPRT), but it needs no assumption about how the data accrue, and it is
// simple to explain. The O'Brien–Fleming shape spends almost nothing early,
// so only a large, clear regression fails early; later looks, where most
// data is, keep most of α. A pass spends no alpha (stopping to pass cannot
// raise the false-failure rate), but it is never easier than in a single
// look: at any look it requires the full minimum sample of every check, and
// that no check would be a regression at the full α. A large change that is
// significant at α but not yet at the look's share stays inconclusive until
// a later look can spend enough; without that rule a slow canary would pass
// at the first look with enough requests. A look past the plan has no alpha
// left: it can pass or be inconclusive but not fail.
//
// # References
//
// Prometheus, promql/quantile.go (histogram_quantile) and "Errors of
// quantile estimation"; Conover, Practical Nonparametric Statistics (2nd/3rd
// ed.), order-statistic quantile intervals and the Mann–Whitney test with
// ties; Lehmann, Nonparametrics (1975); Fisher, The Design of Experiments
// (1935); Holm, Scand. J. Statist. 6 (1979); Benjamini & Hochberg, JRSS B 57
// (1995); Lan & DeMets, Biometrika 70 (1983); Katz et al., Biometrics 34
// (1978), rate-ratio interval; Wilson, JASA 22 (1927); Fabijan et al., KDD
// 2019, sample-ratio mismatch.
package regress
