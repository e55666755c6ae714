package uitest

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/spanwatch/spanwatch/internal/config"
	"github.com/spanwatch/spanwatch/internal/spanmetrics"
	"github.com/spanwatch/spanwatch/internal/testutil"
	"github.com/spanwatch/spanwatch/internal/testutil/spantest"
)

// demoTraffic is one flush interval of the demo: checkout with v1 (80 %)
// and a canary v2 (20 %) whose POST /charge is twice as slow, and frontend
// with one version. Latencies are lognormal (σ 0.4); about 1 % of the
// requests fail.
func demoTraffic(rng *rand.Rand) []spantest.Stub {
	var out []spantest.Stub
	add := func(service, version, op string, n int, median, slow float64) {
		for range n {
			d := median * slow * math.Exp(0.4*rng.NormFloat64())
			st := codes.Unset
			if rng.IntN(100) == 0 {
				st = codes.Error
			}
			out = append(out, spantest.Stub{Service: service, Name: op, Kind: trace.SpanKindServer, Status: st,
				Dur: time.Duration(d * float64(time.Millisecond)),
				Res: []attribute.KeyValue{attribute.String("service.version", version)}})
		}
	}
	for _, op := range []string{"POST /charge", "GET /cart"} {
		slow := 1.0
		if op == "POST /charge" {
			slow = 2
		}
		add("checkout", "v1", op, 160, 40, 1)
		add("checkout", "v2", op, 40, 40, slow)
	}
	add("frontend", "v1", "GET /", 100, 15, 1)
	add("frontend", "v1", "GET /products", 60, 25, 1)
	return out
}

// startDemo runs spanwatch with the default config (native histograms
// beside the classic buckets), fed with 10 simulated minutes of demo traffic
// ending now, and returns its web URL.
func startDemo(t *testing.T) string {
	t.Helper()
	s := spantest.NewSimulation(t, config.Default(), time.Now().Add(-10*time.Minute))
	rng := rand.New(rand.NewPCG(7, 8))
	for range 40 {
		s.Step(15*time.Second, demoTraffic(rng))
	}
	return "http://" + s.App.WebAddr().String()
}

// startSeconds runs spanwatch with its duration histogram in seconds
// (traces_span_metrics_duration_seconds, classic and native), fed with 2
// simulated minutes of demo traffic ending now, and returns its web URL.
func startSeconds(t *testing.T) string {
	t.Helper()
	cfg := config.Default()
	cfg.SpanMetrics.Histogram.Unit = spanmetrics.UnitSeconds
	s := spantest.NewSimulation(t, cfg, time.Now().Add(-2*time.Minute))
	rng := rand.New(rand.NewPCG(11, 12))
	for range 8 {
		s.Step(15*time.Second, demoTraffic(rng))
	}
	return "http://" + s.App.WebAddr().String()
}

// latencyRe matches a latency as fmtMs writes it: "41.2 ms", "1.53 s".
var latencyRe = regexp.MustCompile(`(\d+(?:\.\d+)?(?:e-?\d+)?) (ms|s)\b`)

// requireMs checks that s shows at least n latencies and that each is
// between 5 ms and 2 s: the demo's checkout spans take tens of ms, so a
// histogram in seconds shown unconverted would give values like 0.04 ms.
func requireMs(t *testing.T, what, s string, n int) {
	t.Helper()
	found := latencyRe.FindAllStringSubmatch(s, -1)
	require.GreaterOrEqual(t, len(found), n, "%s: latencies in %q", what, s)
	for _, m := range found {
		v, err := strconv.ParseFloat(m[1], 64)
		require.NoError(t, err)
		if m[2] == "s" {
			v *= 1000
		}
		require.True(t, v >= 5 && v <= 2000, "%s: %s %s out of 5 ms … 2 s in %q", what, m[1], m[2], s)
	}
}

// requireUIBundle fails (CI) or skips unless the UI bundle was built.
func requireUIBundle(t *testing.T) {
	t.Helper()
	index := filepath.Join(testutil.ModuleRoot(t), "internal", "web", "assets", "dist", "index.html")
	if _, err := os.Stat(index); err != nil {
		testutil.Missing(t, "the built web UI ("+index+"; run `cd ui && npm ci && npm run build` first, then rebuild the test)")
	}
}

// chromiumPath is /usr/bin/chromium (Debian's package) or chromium on PATH.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("/usr/bin/chromium"); err == nil {
		return p
	}
	return testutil.Binary(t, "chromium")
}

// artifactDir is $SPANWATCH_ARTIFACTS, or a directory of the test's own.
func artifactDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("SPANWATCH_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(t.TempDir(), "screenshots")
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	return dir
}

// browser starts headless Chromium and returns a tab's context, cancelled
// (and Chromium stopped) when the test ends.
func browser(t *testing.T, timeout time.Duration) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:0:0],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("mute-audio", true),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.Flag("blink-settings", "preferredColorScheme=1"), // light: the chart colours checked below
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	tab, cancelTab := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc() // waits for Chromium to exit
	})
	// The first action starts the browser, for as long as tab lives: the
	// timeout goes on a context derived after it.
	require.NoError(t, chromedp.Do(tab, chromedp.Navigate("about:blank")), "starting %s", chromiumPath(t))
	ctx, cancelTimeout := context.WithTimeout(tab, timeout)
	t.Cleanup(cancelTimeout)
	return ctx
}

// chartInfo describes one figure.chart of the page.
type chartInfo struct {
	Title  string `json:"title"`
	Label  string `json:"label"`  // aria-label: the chart's summary ("last …, max …" or "no data")
	Empty  bool   `json:"empty"`  // "No data in this range."
	Canvas bool   `json:"canvas"` // has a canvas
	Blue   int    `json:"blue"`   // pixels drawn in the first series' colour
	Marker int    `json:"marker"` // pixels drawn in the marker colour
	Stale  bool   `json:"stale"`  // rendered before markCharts
}

// chartsJS reads every chart of the page; Blue counts the pixels drawn in
// color(0) of charts.ts (#1f6feb light, #58a6ff dark), which only data
// lines, distribution areas and heatmap cells use: axes and grid are grey.
// Marker counts the pixels in the colour of the ▶ markers (--marker,
// #9a6700 light, #d29922 dark), which is also color(3): it means markers
// only on charts with fewer than four lines.
const chartsJS = `[...document.querySelectorAll("main figure.chart")].map((f) => {
  const c = f.querySelector("canvas");
  let blue = 0, marker = 0;
  if (c && c.width && c.height) {
    const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    for (let i = 0; i < d.length; i += 4) {
      if (d[i + 3] < 16) continue;
      const near = (r, g, b) => Math.abs(d[i] - r) + Math.abs(d[i + 1] - g) + Math.abs(d[i + 2] - b) < 60;
      if (near(31, 111, 235) || near(88, 166, 255)) blue++;
      else if (near(154, 103, 0) || near(210, 153, 34)) marker++;
    }
  }
  return { title: f.querySelector("figcaption")?.textContent ?? "", label: f.getAttribute("aria-label") ?? "",
    empty: !!f.querySelector(".empty-chart"), canvas: !!c, blue, marker, stale: f.dataset.testStale === "1" };
})`

func charts(t *testing.T, ctx context.Context) []chartInfo {
	t.Helper()
	return eval[[]chartInfo](t, ctx, chartsJS)
}

// waitCharts waits until the page shows at least n fresh charts that all
// have a canvas with data drawn on it.
func waitCharts(t *testing.T, ctx context.Context, n int) []chartInfo {
	t.Helper()
	js := fmt.Sprintf(`(() => { const cs = %s; return cs.length >= %d && cs.every((c) => !c.stale && c.canvas && c.blue > 0); })()`, chartsJS, n)
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](js, chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		t.Fatalf("waiting for %d charts with data: %v\ncharts: %s\nerrors: %s", n, err, dump(charts(t, ctx)), text(t, ctx, "#errors"))
	}
	return charts(t, ctx)
}

// markCharts marks the charts on the page, so waitCharts waits for new ones.
func markCharts(t *testing.T, ctx context.Context) {
	t.Helper()
	eval[chromedp.Void](t, ctx, `document.querySelectorAll("main figure.chart").forEach((f) => f.dataset.testStale = "1")`)
}

// chart returns the chart titled title.
func chart(t *testing.T, cs []chartInfo, title string) chartInfo {
	t.Helper()
	for _, c := range cs {
		if c.Title == title {
			return c
		}
	}
	t.Fatalf("no chart %q in %s", title, dump(cs))
	return chartInfo{}
}

// choose picks an option of a select as a user would: the value, then a
// change event.
func choose(t *testing.T, ctx context.Context, sel, value string) {
	t.Helper()
	got := eval[string](t, ctx, fmt.Sprintf(`(() => {
  const s = document.querySelector(%q);
  s.value = %q;
  s.dispatchEvent(new Event("change", { bubbles: true }));
  return s.value;
})()`, sel, value))
	require.Equal(t, value, got, "option %q of %s", value, sel)
}

// The time-series charts of the service page: the main ones, then the
// same split by version (the latency heatmap comes between them).
var (
	mainCharts    = []string{"Request rate", "Error rate", "Latency P50 / P95 / P99"}
	versionCharts = []string{"Request rate by version", "Error rate by version", "P50 by version", "P95 by version", "P99 by version"}
)

// serviceCharts is the number of charts of the service page.
var serviceCharts = len(mainCharts) + 1 + len(versionCharts)

// serviceRow is a row of the services table.
type serviceRow struct {
	Name    string `json:"name"`
	Rate    string `json:"rate"`
	P95     string `json:"p95"`
	Spark   string `json:"spark"`
	Verdict string `json:"verdict"`
}

// eval evaluates a JS expression and decodes its value.
func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	require.NoError(t, err, "evaluating %s", js)
	return v
}

func dump(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	return eval[string](t, ctx, fmt.Sprintf(`document.querySelector(%q)?.innerText ?? ""`, sel))
}

func location(t *testing.T, ctx context.Context) string {
	t.Helper()
	return eval[string](t, ctx, `location.pathname + location.search`)
}

// waitJS polls a JS expression until it is truthy.
func waitJS(t *testing.T, ctx context.Context, what, js string) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](js, chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		t.Fatalf("waiting for %s: %v\nURL: %s\npage:\n%s\nerrors: %s", what, err, location(t, ctx), text(t, ctx, "main"), text(t, ctx, "#errors"))
	}
}

func screenshot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	p := filepath.Join(dir, "ui-"+name+".png")
	require.NoError(t, os.WriteFile(p, png, 0o644))
	t.Logf("screenshot: %s", p)
}

// rateRe matches the services page's request-rate cell: "26.7/s" or
// "26.7/s (last 1m45s)".
var rateRe = regexp.MustCompile(`^([\d.]+)/s( \(last (\d+m)?(\d+s)?\))?$`)

// requireRate checks that a request-rate cell shows want ± 25 %, and
// whether it names a part of the window.
func requireRate(t *testing.T, what, cell string, want float64, part bool) {
	t.Helper()
	m := rateRe.FindStringSubmatch(strings.TrimSpace(cell))
	require.NotNil(t, m, "%s: request rate %q", what, cell)
	v, err := strconv.ParseFloat(m[1], 64)
	require.NoError(t, err)
	require.InEpsilon(t, want, v, 0.25, "%s: request rate %q", what, cell)
	require.Equal(t, part, m[2] != "", "%s: %q names the part of the window the data covers", what, cell)
}

// requireData checks that every chart has data: a summary with values and
// pixels in the series colour.
func requireData(t *testing.T, cs []chartInfo) {
	t.Helper()
	for _, c := range cs {
		require.False(t, c.Empty, "chart %q says it has no data", c.Title)
		require.Positive(t, c.Blue, "chart %q draws nothing in the series colour", c.Title)
		if c.Label != "" {
			require.NotContains(t, c.Label, "no data", "chart %q", c.Title)
		}
	}
}

// TestUI loads each page of the web UI in headless Chromium against
// spanwatch fed with demo traffic: the services list and its filter,
// navigation to a service, its charts (also by version, with the markers
// where versions first served traffic) and its span-kind filter, the time
// picker, Compare showing the canary's regression, and a page opened before
// the first flush that shows the data on refresh, and a spanwatch whose
// duration histogram is in seconds showing its latencies in milliseconds.
// Screenshots go to $SPANWATCH_ARTIFACTS when it is set.
func TestUI(t *testing.T) {
	requireUIBundle(t)
	chromiumPath(t)
	began := time.Now()
	base := startDemo(t)
	t.Logf("demo traffic simulated in %s; spanwatch at %s", time.Since(began).Round(time.Millisecond), base)
	dir := artifactDir(t)
	ctx := browser(t, 60*time.Second)
	t.Cleanup(func() { t.Logf("browser tests took %s", time.Since(began).Round(time.Millisecond)) })

	steps := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"services", func(t *testing.T) {
			require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS(`table.data tbody tr[data-name="checkout"]`))))
			require.Equal(t, "Services · spanwatch", eval[string](t, ctx, `document.title`))
			// Rows: name, P95 and a sparkline with a path; checkout's verdict.
			waitJS(t, ctx, "checkout's verdict", `document.querySelector('tr[data-name="checkout"] td.verdict-cell .badge') !== null`)
			rows := eval[[]serviceRow](t, ctx, `[...document.querySelectorAll("table.data tbody tr")].map((r) => ({
  name: r.querySelector("th a")?.textContent ?? "",
  rate: r.children[1]?.textContent ?? "",
  p95: r.children[3]?.textContent ?? "",
  spark: r.querySelector("svg.spark path")?.getAttribute("d") ?? "",
  verdict: r.querySelector("td.verdict-cell")?.textContent ?? "",
}))`)
			t.Logf("services: %s", dump(rows))
			names := map[string]int{}
			for i, r := range rows {
				names[r.Name] = i
				require.NotEmpty(t, r.P95, r.Name)
				require.NotEqual(t, "–", strings.TrimSpace(r.P95), "P95 of %s", r.Name)
				require.Regexp(t, `^M[\d.]+,[\d.]+(L[\d.]+,[\d.]+){5,}`, r.Spark, "sparkline of %s", r.Name)
			}
			require.Contains(t, names, "checkout")
			require.Contains(t, names, "frontend")
			require.Contains(t, rows[names["checkout"]].Verdict, "regression")
			require.NotContains(t, rows[names["frontend"]].Verdict, "regression", "frontend has one version")
			// Request rates over the last 5 minutes, which the data covers:
			// checkout serves 400 spans every 15 s.
			require.Equal(t, "Requests/s (last 5m)", text(t, ctx, "table.data thead th:nth-child(2)"))
			requireRate(t, "checkout", rows[names["checkout"]].Rate, 400.0/15, false)
			screenshot(t, ctx, dir, "services")
		}},
		{"services filter", func(t *testing.T) {
			visible := `[...document.querySelectorAll("table.data tbody tr")].filter((r) => !r.hidden).map((r) => r.dataset.name).join(",")`
			status := `document.querySelector("main p[role=status]")?.textContent`
			// "/" focuses the filter box; typing narrows the list, case-insensitively, and goes into the URL.
			// (A key down the page handles, as a browser sends it: KeyEvent would
			// follow it with a char event that types the "/" anyway.)
			handled := eval[bool](t, ctx, `!document.body.dispatchEvent(new KeyboardEvent("keydown", { key: "/", bubbles: true, cancelable: true }))`)
			require.True(t, handled, "the page handles /")
			require.True(t, eval[bool](t, ctx, `document.activeElement?.matches("input[type=search]") ?? false`), "/ focuses the filter")
			require.NoError(t, chromedp.Do(ctx, chromedp.KeyEvent("Fro")))
			waitJS(t, ctx, "only frontend", fmt.Sprintf(`%s === "frontend"`, visible))
			require.Equal(t, "1 of 2 services match “Fro”.", eval[string](t, ctx, status))
			require.Equal(t, "/?q=Fro", location(t, ctx))
			// No match: no rows, and says so.
			require.NoError(t, chromedp.Do(ctx, chromedp.KeyEvent("zz")))
			waitJS(t, ctx, "no rows", fmt.Sprintf(`%s === ""`, visible))
			require.Equal(t, "0 of 2 services match “Frozz”.", eval[string](t, ctx, status))
			// A link with ?q= opens filtered.
			require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(base+"/?q=check"), chromedp.WaitVisible(chromedp.CSS(`table.data tbody tr[data-name="checkout"]`))))
			require.Equal(t, "check", eval[string](t, ctx, `document.querySelector("input[type=search]").value`))
			waitJS(t, ctx, "only checkout", fmt.Sprintf(`%s === "checkout"`, visible))
			// Emptying the box shows every row again and drops q from the URL.
			require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`input[type=search]`), chromedp.NodeVisible), chromedp.KeyEvent(kb.End+strings.Repeat(kb.Backspace, len("check")))))
			waitJS(t, ctx, "every row", fmt.Sprintf(`%s.split(",").sort().join(",") === "checkout,frontend"`, visible))
			require.Equal(t, "2 services.", eval[string](t, ctx, status))
			require.Equal(t, "/", location(t, ctx))
		}},
		{"service", func(t *testing.T) {
			require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`tr[data-name="checkout"] th a`), chromedp.NodeVisible)))
			waitJS(t, ctx, "the service page", `location.pathname === "/service/checkout" && document.querySelector("main h1")?.textContent === "checkout"`)
			require.Equal(t, "checkout · spanwatch", eval[string](t, ctx, `document.title`))
			// Request rate, error rate, latency; the heatmap; the same split by version.
			cs := waitCharts(t, ctx, serviceCharts)
			t.Logf("charts: %s", dump(cs))
			require.Len(t, cs, serviceCharts)
			requireData(t, cs)
			for _, title := range versionCharts {
				c := chart(t, cs, title)
				require.Contains(t, c.Label, "v1: last", "chart %q", title)
				require.Contains(t, c.Label, "v2: last", "chart %q", title)
			}
			ops := text(t, ctx, "main table.data tbody")
			require.Contains(t, ops, "POST /charge")
			require.Contains(t, ops, "GET /cart")
			// The demo's traffic starts 10 minutes into the hour: both versions get a
			// marker there, on the main charts too, and are listed.
			versions := text(t, ctx, "main p.versions")
			require.Regexp(t, `^Versions in this range: v1: ▶ first traffic at .+; v2: ▶ first traffic at .+\.$`, versions)
			for _, title := range mainCharts {
				c := chart(t, cs, title)
				require.Regexp(t, `markers: ▶ v1 at [^,]+, ▶ v2 at `, c.Label, "chart %q", title)
				require.Positive(t, c.Marker, "chart %q draws no marker", title)
			}
			screenshot(t, ctx, dir, "service")
		}},
		{"service span kind", func(t *testing.T) {
			// The demo has server spans only: client shows none.
			markCharts(t, ctx)
			choose(t, ctx, `main select[aria-label="Span kind"]`, "client")
			waitJS(t, ctx, "kind=client", `new URLSearchParams(location.search).get("kind") === "client"`)
			waitJS(t, ctx, "no client spans", `document.querySelector("main .empty h2")?.textContent === "No client spans from checkout in this range"`)
			waitJS(t, ctx, "no versions", `document.querySelector("main .grid:last-of-type")?.textContent === "No traffic in this range."`)
			// All kinds: the server operations, with their kind.
			markCharts(t, ctx)
			choose(t, ctx, `main select[aria-label="Span kind"]`, "all")
			waitJS(t, ctx, "kind=all", `new URLSearchParams(location.search).get("kind") === "all"`)
			requireData(t, waitCharts(t, ctx, serviceCharts))
			rows := eval[[]string](t, ctx, `[...document.querySelectorAll("main table.data tbody tr")].map((r) => r.innerText.split("\t").slice(0, 2).join(" | "))`)
			require.ElementsMatch(t, []string{"POST /charge | server", "GET /cart | server"}, rows)
			// Back to the default (server + consumer): kind leaves the URL.
			markCharts(t, ctx)
			choose(t, ctx, `main select[aria-label="Span kind"]`, "entry")
			waitJS(t, ctx, "no kind in the URL", `location.pathname === "/service/checkout" && !new URLSearchParams(location.search).has("kind")`)
			requireData(t, waitCharts(t, ctx, serviceCharts))
		}},
		{"time picker", func(t *testing.T) {
			pressed := `[...document.querySelectorAll("#range > button")].find((b) => b.textContent === %q)?.getAttribute("aria-pressed") === "true"`
			waitJS(t, ctx, "1h (the default) pressed", fmt.Sprintf(pressed, "1h"))
			for _, r := range []string{"15m", "6h", "1h"} {
				markCharts(t, ctx)
				require.NoError(t, chromedp.Do(ctx, chromedp.Click(fmt.Sprintf(`//div[@id="range"]/button[text()=%q]`, r), chromedp.NodeVisible)))
				want := "range=" + r
				if r == "1h" { // the default is left out of the URL
					waitJS(t, ctx, "the URL without range", `location.pathname === "/service/checkout" && !location.search.includes("range=")`)
				} else {
					waitJS(t, ctx, "the URL with "+want, fmt.Sprintf(`location.pathname === "/service/checkout" && new URLSearchParams(location.search).get("range") === %q`, r))
				}
				waitJS(t, ctx, r+" pressed", fmt.Sprintf(pressed, r))
				cs := waitCharts(t, ctx, serviceCharts)
				requireData(t, cs)
				if r == "15m" {
					screenshot(t, ctx, dir, "service-15m")
				}
			}
			// Back goes to the previous range.
			markCharts(t, ctx)
			require.NoError(t, chromedp.Do(ctx, chromedp.NavigateBack()))
			waitJS(t, ctx, "range=6h after Back", `new URLSearchParams(location.search).get("range") === "6h"`)
			requireData(t, waitCharts(t, ctx, serviceCharts))
		}},
		{"compare", func(t *testing.T) {
			require.NoError(t, chromedp.Do(ctx, chromedp.Click(`//main//a[contains(., "Compare versions")]`, chromedp.NodeVisible)))
			waitJS(t, ctx, "the compare page", `location.pathname === "/compare" && document.querySelector("main h1")?.textContent === "Compare"`)
			waitJS(t, ctx, "the verdict", `document.querySelector(".compare-out .verdict-head .badge") !== null`)
			form := eval[map[string]string](t, ctx, `({service: document.getElementById("f-service").value, base: document.getElementById("f-base").value, cand: document.getElementById("f-cand").value})`)
			require.Equal(t, map[string]string{"service": "checkout", "base": "v1", "cand": "v2"}, form)
			loc := location(t, ctx)
			require.Contains(t, loc, "service=checkout")
			require.Contains(t, loc, "base=v1")
			require.Contains(t, loc, "cand=v2")
			require.Contains(t, text(t, ctx, ".compare-out .verdict-head .badge"), "regression")
			verdicts := text(t, ctx, ".compare-out table.verdicts")
			require.Regexp(t, `POST /charge[^\n]*regression`, verdicts)
			require.NotRegexp(t, `GET /cart[^\n]*regression`, verdicts, "only the canary's POST /charge is slower")
			cs := waitCharts(t, ctx, 1)
			t.Logf("charts: %s", dump(cs))
			require.Len(t, cs, 1)
			require.Contains(t, cs[0].Title, "Latency distribution")
			requireData(t, cs)
			screenshot(t, ctx, dir, "compare")
		}},
		{"versions at range start", func(t *testing.T) {
			// The last 5 minutes: both versions already serve when the range
			// starts, so no marker at the left edge; the list still names them.
			to := time.Now().Unix()
			require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(fmt.Sprintf("%s/service/checkout?from=%d&to=%d", base, to-300, to))))
			cs := waitCharts(t, ctx, serviceCharts)
			requireData(t, cs)
			waitJS(t, ctx, "the version list", `document.querySelector("main p.versions") !== null`)
			require.Equal(t, "Versions in this range: v1: serving when the range starts; v2: serving when the range starts.", text(t, ctx, "main p.versions"))
			for _, title := range slices.Concat(mainCharts, versionCharts) {
				c := chart(t, cs, title)
				require.NotContains(t, c.Label, "markers:", "chart %q", title)
				require.Zero(t, c.Marker, "chart %q draws a marker", title)
			}
			for _, title := range versionCharts {
				require.Contains(t, chart(t, cs, title).Label, "v2: last", "chart %q still shows v2", title)
			}
		}},
		{"first flush", func(t *testing.T) {
			// A spanwatch that has no span metrics yet: the page says so, and
			// shows them on the next refresh once the first flush wrote them.
			s := spantest.NewSimulation(t, config.Default(), time.Now().Add(-time.Minute))
			empty := "http://" + s.App.WebAddr().String()
			emptyState := `document.querySelector("main .empty h2")?.textContent === "No span metrics yet"`
			require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(empty+"/")))
			waitJS(t, ctx, "the empty state", emptyState)
			s.Step(15*time.Second, nil)
			require.NoError(t, chromedp.Do(ctx, chromedp.KeyEvent("r")))
			waitJS(t, ctx, "the empty state after r", emptyState)
			rng := rand.New(rand.NewPCG(9, 10))
			for range 4 {
				s.Step(15*time.Second, demoTraffic(rng))
			}
			require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#range button[aria-label="Refresh"]`), chromedp.NodeVisible)))
			waitJS(t, ctx, "the services after ↻", `document.querySelector('table.data tbody tr[data-name="checkout"]') !== null`)
			// The detection is kept from then on: r shows the services again.
			require.NoError(t, chromedp.Do(ctx, chromedp.KeyEvent("r")))
			waitJS(t, ctx, "the services after r", `document.querySelector('table.data tbody tr[data-name="frontend"]') !== null`)
		}},
		{"histogram in seconds", func(t *testing.T) {
			// histogram.unit: s: …_duration_seconds, in seconds; every latency
			// on the pages is still in milliseconds.
			began := time.Now()
			base := startSeconds(t)
			t.Logf("spanwatch with a histogram in seconds at %s (%s)", base, time.Since(began).Round(time.Millisecond))
			require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS(`table.data tbody tr[data-name="checkout"]`))))
			require.Contains(t, text(t, ctx, "main"), "traces_span_metrics_duration_seconds: seconds, shown in milliseconds")
			p95 := eval[string](t, ctx, `document.querySelector('tr[data-name="checkout"]').children[3].textContent`)
			requireMs(t, "services: P95 of checkout", p95, 1)
			// Two minutes of data: the rate over them, not over 5 minutes
			// (or the hour of the range), and the cell says so.
			rate := eval[string](t, ctx, `document.querySelector('tr[data-name="checkout"]').children[1].textContent`)
			requireRate(t, "checkout, 2 minutes of data", rate, 400.0/15, true)

			require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(base+"/service/checkout")))
			cs := waitCharts(t, ctx, serviceCharts)
			requireData(t, cs)
			// Operations: P50, P95 and P99 of each.
			rows := eval[[]string](t, ctx, `[...document.querySelectorAll("main table.data tbody tr")].map((r) => r.innerText.split("\t").slice(4).join(" | "))`)
			t.Logf("operations' P50 | P95 | P99: %q", rows)
			require.Len(t, rows, 2)
			for _, r := range rows {
				requireMs(t, "operations table", r, 3)
			}
			// The charts' summaries: "P50: last 41.2 ms, max …", by version alike.
			for _, title := range []string{"Latency P50 / P95 / P99", "P50 by version", "P95 by version", "P99 by version"} {
				requireMs(t, title, chart(t, cs, title).Label, 2)
			}
			// The heatmap's rows: "… requests in buckets from 8.00 ms to …".
			heat := ""
			for _, c := range cs {
				if strings.HasPrefix(c.Title, "Requests per latency bucket") {
					heat = c.Label
				}
			}
			m := regexp.MustCompile(`in buckets from ([\d.]+) ms to `).FindStringSubmatch(heat)
			require.NotNil(t, m, "heatmap summary %q", heat)
			low, err := strconv.ParseFloat(m[1], 64)
			require.NoError(t, err)
			require.GreaterOrEqual(t, low, 1.0, "heatmap's lowest bucket in %q", heat)
		}},
	}
	for _, s := range steps {
		if !t.Run(s.name, s.run) {
			t.FailNow() // the next steps start where this one ended
		}
	}
}
