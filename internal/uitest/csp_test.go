package uitest

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// recordViolations collects every securitypolicyviolation event of each
// page into window.__cspViolations, from before the page's own scripts run.
const recordViolations = `window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(e.effectiveDirective + " blocked " + (e.blockedURI || "inline") + " at " + (e.sourceFile || "?") + ":" + e.lineNumber);
});`

// TestUIContentSecurityPolicy loads each page of the UI in Chromium with
// the policy spanwatch serves and checks that the pages work (data, charts,
// a verdict) and that the browser reports no violation of the policy, in
// the pages' events or on the console.
func TestUIContentSecurityPolicy(t *testing.T) {
	requireUIBundle(t)
	chromiumPath(t)
	base := startSeconds(t)
	ctx := browser(t, 60*time.Second)

	// Every console message and browser log entry, until the test ends.
	cctx, stopConsole := context.WithCancel(ctx)
	messages := chromedp.Console(cctx)
	var (
		mu      sync.Mutex
		console []string
		done    = make(chan struct{})
	)
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			mu.Lock()
			console = append(console, m.String())
			mu.Unlock()
		}
	}()
	consoleCSP := func() []string {
		mu.Lock()
		defer mu.Unlock()
		var out []string
		for _, m := range console {
			if strings.Contains(m, "Content Security Policy") {
				out = append(out, m)
			}
		}
		return out
	}
	t.Cleanup(func() { stopConsole(); <-done })
	_, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: recordViolations})
	require.NoError(t, err)

	violations := func(t *testing.T) {
		t.Helper()
		got := eval[[]string](t, ctx, `window.__cspViolations ?? ["the recorder did not run"]`)
		require.Empty(t, got, "Content-Security-Policy violations")
	}
	steps := []struct {
		name, path, ready string
	}{
		{"services", "/", `document.querySelector('tr[data-name="checkout"] td.verdict-cell .badge') !== null`},
		{"service", "/service/checkout", `document.querySelectorAll("main figure.chart canvas").length >= 3`},
		{"compare", "/compare?service=checkout&base=v1&cand=v2", `document.querySelector(".compare-out .verdict-head .badge") !== null`},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(base+s.path)))
			waitJS(t, ctx, s.name, s.ready)
			csp, err := chromedp.Run(ctx, chromedp.Evaluate[string](`fetch(location.href).then((r) => r.headers.get("content-security-policy"))`, chromedp.EvalAwaitPromise))
			require.NoError(t, err)
			require.Contains(t, csp, "script-src 'self'", "the page is served with the policy")
			violations(t)
			require.Empty(t, consoleCSP(), "console")
		})
	}
	// The policy is enforced: an inline script is refused, and reported.
	evalVoid := `(() => { const s = document.createElement("script"); s.textContent = "window.__inlineRan = true"; document.body.append(s); })()`
	eval[chromedp.Void](t, ctx, evalVoid)
	require.False(t, eval[bool](t, ctx, `window.__inlineRan === true`), "an inline script ran")
	waitJS(t, ctx, "the violation event", `window.__cspViolations.length > 0`)
	require.Eventually(t, func() bool { return len(consoleCSP()) > 0 }, 5*time.Second, 50*time.Millisecond,
		"the console reports the refused script (so the console check above can see a violation)")
}
