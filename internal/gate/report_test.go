package gate

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spanwatch/spanwatch/internal/regress"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// formats maps each output format to its golden file's extension.
var formats = map[string]string{"table": "txt", "markdown": "md", "junit": "xml", "json": "json"}

// nativeGrid is a native histogram's grid (schema 3) from 1 ms to 10 s.
func nativeGrid() []float64 {
	var b []float64
	for k := 0; k <= 107; k++ {
		b = append(b, math.Exp2(float64(k)/8))
	}
	return append(b, math.Inf(1))
}

// classicGrid is the OpenTelemetry SDK's default buckets, in ms.
func classicGrid() []float64 {
	return []float64{5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000, math.Inf(1)}
}

// lognormal is an arm of n requests whose latencies are lognormal (σ 0.5)
// around median, binned on bounds with expected counts.
func lognormal(bounds []float64, n, median, errors float64) regress.Arm {
	h := regress.Histogram{Bounds: bounds, Counts: make([]float64, len(bounds))}
	prev := 0.0
	for i, b := range bounds {
		f := regress.NormalCDF(math.Log(b/median) / 0.5)
		h.Counts[i] = n * (f - prev)
		prev = f
	}
	return regress.Arm{Latency: h, Requests: n, Errors: errors}
}

type scenario struct {
	name string
	rep  *Report
}

// scenarios are the fixed inputs of the golden files: reports built from
// regress.CompareService over expected lognormal histograms.
func scenarios(t *testing.T) []scenario {
	t.Helper()
	at := time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)
	reading := "reading traces_span_metrics_calls_total and traces_span_metrics_duration_milliseconds"
	// mk compares ops at look of looks, 15 s apart.
	mk := func(service string, native bool, th regress.Thresholds, look, looks int, ops []regress.Operation, notes ...string) *Report {
		res := regress.CompareService(ops, th, regress.Look{Index: look, Total: looks})
		return &Report{
			Service: service, Baseline: `service_version="v1", last 5m`, Candidate: `service_version="v2", last 5m`,
			Verdict: res.Verdict, Result: res, Looks: look, PlannedLooks: looks, Waited: time.Duration(look-1) * 15 * time.Second,
			Native: native, Notes: append([]string{reading}, notes...), At: at,
		}
	}
	native, classic := nativeGrid(), classicGrid()
	canary := regress.DefaultThresholds()
	canary.CandidateShare = 0.2
	op := func(name string, bounds []float64, nb, nc, mb, mc, eb, ec float64) regress.Operation {
		return regress.Operation{Name: name, Base: lognormal(bounds, nb, mb, eb), Cand: lognormal(bounds, nc, mc, ec)}
	}
	out := []scenario{
		{"regression", mk("checkout", true, canary, 1, 1, []regress.Operation{
			// Twice as slow: fails the gate.
			op("POST /charge", native, 2000, 500, 40, 80, 4, 1),
			// Errors up from 0.50 % to 1.12 %: flagged, not family-wise.
			op("GET /cart", native, 5000, 1250, 30, 30, 25, 14),
			// Too few requests to pass, and no change.
			op("GET /health", native, 40, 10, 2, 2, 0, 0),
		}, `two versions served traffic: comparing the older "v1" (baseline) with the newer "v2" (candidate)`)},
		// The operation is the service.
		{"single", mk("checkout", true, canary, 1, 1, []regress.Operation{op("POST /charge", native, 835, 150, 62, 107, 3, 1)})},
		// A small operation regressed; the service as a whole did not move.
		{"operation", mk("search", true, regress.DefaultThresholds(), 1, 1, []regress.Operation{
			op("GET /list", native, 200000, 200000, 40, 40, 200, 200),
			op("GET /export", native, 2000, 2000, 100, 150, 2, 2),
		})},
		{"pass", mk("cart", false, regress.DefaultThresholds(), 4, 21, []regress.Operation{
			op("GET /cart", classic, 3000, 3000, 40, 40, 6, 6),
			op("POST /cart/items", classic, 2000, 2000, 60, 60, 2, 2),
		})},
		{"inconclusive", mk("payments", false, regress.DefaultThresholds().ForOffset(), 21, 21, []regress.Operation{
			op("POST /pay", classic, 600, 150, 120, 125, 1, 0),
		}, "comparing with the same window 1h earlier: daily traffic patterns and noisy neighbours look like regressions; prefer two versions in the same window")},
	}
	// Offset mode: the same window an hour earlier, with wider ratios.
	off := out[len(out)-1].rep
	off.Baseline, off.Candidate = "last 5m offset 1h", "last 5m"
	off.Notes = append(off.Notes, "offset mode: a change counts from P50 ×1.2, P95 ×1.2, P99 ×1.3 (wider than between two versions in the same window; the min_ratio thresholds set them)")
	// The inputs must be the cases they are named after.
	want := map[string]regress.Verdict{"regression": regress.Regression, "single": regress.Regression,
		"operation": regress.Regression, "pass": regress.Pass, "inconclusive": regress.Inconclusive}
	for _, sc := range out {
		require.Equal(t, want[sc.name], sc.rep.Verdict, "%s: %s", sc.name, sc.rep.Result.Reason)
	}
	reg := out[0].rep.Result
	require.True(t, reg.Operations[0].Gates, reg.Reason)
	require.Equal(t, "GET /cart", reg.Operations[1].Name)
	require.True(t, reg.Operations[1].Verdict == regress.Regression && !reg.Operations[1].Gates, "GET /cart is flagged: %s", reg.Reason)
	require.Equal(t, regress.Inconclusive, reg.Operations[2].Verdict)
	require.Equal(t, regress.Pass, out[2].rep.Result.Service.Verdict)
	return out
}

// TestWriteGolden compares every format's output on fixed inputs with
// testdata/; go test ./internal/gate -update rewrites them.
func TestWriteGolden(t *testing.T) {
	for _, sc := range scenarios(t) {
		for format, ext := range formats {
			t.Run(sc.name+"/"+format, func(t *testing.T) {
				var b bytes.Buffer
				require.NoError(t, Write(&b, format, sc.rep))
				path := filepath.Join("testdata", sc.name+"."+ext)
				if *update {
					require.NoError(t, os.MkdirAll("testdata", 0o755))
					require.NoError(t, os.WriteFile(path, b.Bytes(), 0o644))
					return
				}
				want, err := os.ReadFile(path)
				require.NoError(t, err, "go test ./internal/gate -update writes it")
				if format == "json" {
					// Full-precision floats may differ in the last bits
					// between architectures (fused multiply-add).
					require.Equal(t, roundJSON(t, want), roundJSON(t, b.Bytes()), "%s differs; go test ./internal/gate -update rewrites it", path)
					return
				}
				require.Equal(t, string(want), b.String(), "%s differs; go test ./internal/gate -update rewrites it", path)
			})
		}
	}
}

// roundJSON decodes b with every number rounded to 12 significant digits.
func roundJSON(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	require.NoError(t, json.Unmarshal(b, &v))
	var round func(any) any
	round = func(v any) any {
		switch x := v.(type) {
		case float64:
			r, err := strconv.ParseFloat(strconv.FormatFloat(x, 'g', 12, 64), 64)
			require.NoError(t, err)
			return r
		case []any:
			for i := range x {
				x[i] = round(x[i])
			}
		case map[string]any:
			for k := range x {
				x[k] = round(x[k])
			}
		}
		return v
	}
	return round(v)
}

// TestWriteReadsCleanly holds what the golden files show in every
// scenario: one header, each note once, one verdict line, a line per
// regressed or flagged operation, and no gating regression described as
// not significant family-wise.
func TestWriteReadsCleanly(t *testing.T) {
	for _, sc := range scenarios(t) {
		t.Run(sc.name, func(t *testing.T) {
			var b bytes.Buffer
			require.NoError(t, Write(&b, "table", sc.rep))
			out := b.String()
			require.Equal(t, 1, strings.Count(out, "spanwatch gate: "))
			for _, n := range sc.rep.Notes {
				require.Equal(t, 1, strings.Count(out, n), "note %q", n)
			}
			lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			require.True(t, strings.HasPrefix(lines[len(lines)-1], "verdict: "+sc.rep.Verdict.String()), lines[len(lines)-1])
			require.Equal(t, 1, strings.Count(out, "verdict: "))
			for _, l := range lines {
				require.LessOrEqual(t, strings.Count(l, "regression"), 1, "a line says regression once: %s", l)
			}
			for _, o := range sc.rep.Result.Operations {
				line := o.Name + ": "
				switch {
				case o.Gates:
					require.Contains(t, out, line+"regression — ")
					require.NotContains(t, lineOf(out, line), "family-wise")
				case o.Verdict == regress.Regression:
					require.Contains(t, out, line+"flagged — ")
					require.Contains(t, lineOf(out, line), "does not fail the gate")
				default:
					require.NotContains(t, out, "\n"+line, "only regressed and flagged operations get a line")
				}
			}

			b.Reset()
			require.NoError(t, Write(&b, "junit", sc.rep))
			var suites junitSuites
			require.NoError(t, xml.Unmarshal(b.Bytes(), &suites))
			require.Len(t, suites.Suites, 1)
			require.Len(t, suites.Suites[0].Cases, 1+len(sc.rep.Result.Operations))

			b.Reset()
			require.NoError(t, Write(&b, "json", sc.rep))
			var js map[string]any
			require.NoError(t, json.Unmarshal(b.Bytes(), &js))
			require.Equal(t, sc.rep.Result.Reason, js["reason"])
		})
	}
}

// lineOf returns the line of out that starts with prefix.
func lineOf(out, prefix string) string {
	for l := range strings.SplitSeq(out, "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}

func TestMarkdownEscapes(t *testing.T) {
	require.Equal(t, "`a|b`", mdCode("a|b"))
	require.Equal(t, "``a`b``", mdCode("a`b"))
	require.Equal(t, "`` `a ``", mdCode("`a"))
	require.Equal(t, `\*x\* p < 0.001 \<b> a\\_b`, mdEscape("*x* p < 0.001 <b> a\\_b"))
	require.Equal(t, `a\|b`, mdCell("a|b"))
}
