package gate

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spanwatch/spanwatch/internal/regress"
)

// Write renders rep in format: table, json, junit or markdown.
func Write(w io.Writer, format string, rep *Report) error {
	switch format {
	case "table", "":
		return writeTable(w, rep)
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(jsonReport(rep))
	case "junit":
		return writeJUnit(w, rep)
	case "markdown":
		return writeMarkdown(w, rep)
	}
	return fmt.Errorf("unknown format %q (table, json, junit, markdown)", format)
}

// row is one operation (or the whole service) in the human outputs.
type row struct {
	name      string
	res       regress.Result
	q         map[string]regress.Finding
	verdict   regress.Verdict
	reasonTxt string
	// flagged: an operation that looks regressed at the false-discovery
	// rate but is not significant family-wise, so it does not fail the gate.
	flagged bool
}

// verdictText is the row's verdict as the outputs print it: "flagged"
// for an operation that looks regressed but does not fail the gate.
func (r row) verdictText() string {
	if r.flagged {
		return "flagged"
	}
	return r.verdict.String()
}

// serviceRow names the row of the service as a whole.
const serviceRow = "(service)"

func rows(rep *Report) []row {
	mk := func(name string, r regress.Result) row {
		q := map[string]regress.Finding{}
		for _, f := range r.Findings {
			q[f.Check] = f
		}
		return row{name: name, res: r, q: q, verdict: r.Verdict, reasonTxt: r.Reason}
	}
	out := []row{mk(serviceRow, rep.Result.Service)}
	for _, o := range rep.Result.Operations {
		r := mk(o.Name, o.Result)
		r.flagged = o.Verdict == regress.Regression && !o.Gates
		out = append(out, r)
	}
	return out
}

func num(v float64) string {
	switch {
	case math.IsNaN(v):
		return "–"
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

func quantiles(r row, check string) string {
	f, ok := r.q[check]
	if !ok {
		return "–"
	}
	return num(f.Baseline) + " → " + num(f.Candidate)
}

func change(r row, check string) string {
	f, ok := r.q[check]
	if !ok || math.IsNaN(f.Ratio) || f.Ratio == 0 {
		return "–"
	}
	s := percent(f.Ratio)
	if !math.IsNaN(f.CILow) && !math.IsNaN(f.CIHigh) && f.CILow > 0 {
		s += fmt.Sprintf(" (%s…%s)", percent(f.CILow), percent(f.CIHigh))
	}
	if f.ResolutionLimited {
		s += " ≈"
	}
	return s
}

func errorRates(r row) string {
	if f, ok := r.q[regress.CheckErrors]; ok {
		return fmt.Sprintf("%.2f → %.2f", f.Baseline*100, f.Candidate*100)
	}
	return "–"
}

func pvalue(p float64) string {
	switch {
	case math.IsNaN(p):
		return "–"
	case p < 0.001:
		return "<0.001"
	}
	return fmt.Sprintf("%.3f", p)
}

func minP(r row) float64 {
	p := math.NaN()
	for _, f := range r.res.Findings {
		if math.IsNaN(p) || f.AdjustedP < p {
			p = f.AdjustedP
		}
	}
	return p
}

// title is the first line of every human output.
func title(rep *Report) string {
	return fmt.Sprintf("spanwatch gate: %s — %s", rep.Service, strings.ToUpper(rep.Verdict.String()))
}

// headerLines say what the report compared and how: the arms, the looks,
// the source of the latencies, then the notes, one line each.
func headerLines(rep *Report) []string {
	src := "classic buckets"
	if rep.Native {
		src = "native histograms"
	}
	looks := "looks"
	if rep.Looks == 1 {
		looks = "look"
	}
	out := []string{
		"baseline:  " + rep.Baseline,
		"candidate: " + rep.Candidate,
		fmt.Sprintf("%d %s of %d planned, waited %s; latencies from %s", rep.Looks, looks, rep.PlannedLooks, rep.Waited.Round(time.Second), src),
	}
	for _, n := range rep.Notes {
		out = append(out, "note: "+n)
	}
	return out
}

// opLine is the line of a regressed or flagged row under the table.
type opLine struct {
	name    string
	flagged bool
	// check is the decisive check in words.
	check string
}

// opLines lists the rows that fail the gate or are flagged: the service
// as a whole when it regressed (unless its only operation says the same),
// then the operations in the result's order (regressions first, by
// impact).
func opLines(rep *Report) []opLine {
	var out []opLine
	rs := rows(rep)
	if len(rs) == 2 {
		rs = rs[1:]
	}
	for _, r := range rs {
		if r.verdict == regress.Regression {
			out = append(out, opLine{name: r.name, flagged: r.flagged, check: decisive(r.res.Findings)})
		}
	}
	return out
}

// text renders the line after the row's name.
func (l opLine) text() string {
	if l.flagged {
		return "flagged — " + l.check + ": significant at the false-discovery rate, not family-wise, so it does not fail the gate"
	}
	return "regression — " + l.check
}

// decisive renders the regressed check with the smallest adjusted p-value,
// and names the other regressed checks.
func decisive(fs []regress.Finding) string {
	best := -1
	for i, f := range fs {
		if f.Verdict == regress.Regression && (best < 0 || f.AdjustedP < fs[best].AdjustedP) {
			best = i
		}
	}
	if best < 0 {
		return "a check is significant family-wise and large"
	}
	var also []string
	for i, f := range fs {
		if i != best && f.Verdict == regress.Regression {
			also = append(also, checkName(f.Check))
		}
	}
	s := fs[best].Evidence()
	if len(also) > 0 {
		s += "; also " + strings.Join(also, ", ")
	}
	return s
}

func checkName(check string) string {
	switch check {
	case regress.CheckP50, regress.CheckP95, regress.CheckP99:
		return strings.ToUpper(check)
	}
	return check
}

// verdictLine says what decided the gate, starting with the verdict, with
// the operations' names rendered by name. A regression names what failed
// the gate (the lines above show their checks); otherwise the service
// decides, and its reason says why.
func verdictLine(rep *Report, name func(string) string) string {
	res := rep.Result
	if res.Verdict != regress.Regression {
		if res.Service.Reason != "" {
			return res.Service.Reason
		}
		return res.Reason
	}
	var gating []string
	for _, o := range res.Operations {
		if o.Gates {
			gating = append(gating, name(o.Name))
		}
	}
	if len(res.Operations) == 1 && len(gating) == 1 {
		return "regression in " + gating[0]
	}
	var parts []string
	if res.Service.Verdict == regress.Regression {
		parts = append(parts, "of the service as a whole")
	}
	switch len(gating) {
	case 0:
	case 1:
		parts = append(parts, "in operation "+gating[0])
	default:
		parts = append(parts, "in operations "+strings.Join(gating, ", "))
	}
	s := "regression " + strings.Join(parts, " and ")
	if res.Service.Verdict != regress.Regression {
		s += " (the service as a whole: " + res.Service.Verdict.String() + ")"
	}
	return s
}

func plainName(s string) string { return s }

// writeTable renders one header, the table, a line per regressed or
// flagged operation and the verdict: stdout alone tells the whole story,
// each note once.
func writeTable(w io.Writer, rep *Report) error {
	fmt.Fprintln(w, title(rep))
	for _, l := range headerLines(rep) {
		fmt.Fprintln(w, l)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "OPERATION\tREQUESTS\tP50 ms\tP95 ms\tP99 ms\tP95 CHANGE (CI)\tERRORS %\tP (adj.)\tVERDICT")
	for _, r := range rows(rep) {
		fmt.Fprintf(tw, "%s\t%.0f / %.0f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.name,
			r.res.BaselineRequests, r.res.CandidateRequests, quantiles(r, "p50"), quantiles(r, "p95"), quantiles(r, "p99"),
			change(r, "p95"), errorRates(r), pvalue(minP(r)), r.verdictText())
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	for _, l := range opLines(rep) {
		fmt.Fprintf(w, "%s: %s\n", l.name, l.text())
		// An operation's attribution (where in its trace the change
		// lies) belongs on the lines right under its own.
	}
	_, err := fmt.Fprintf(w, "verdict: %s\n", verdictLine(rep, plainName))
	return err
}

// writeMarkdown renders the table's story in Markdown (a CI summary or a
// pull-request comment).
func writeMarkdown(w io.Writer, rep *Report) error {
	fmt.Fprintf(w, "### spanwatch gate: %s — **%s**\n\n", mdCode(rep.Service), strings.ToUpper(rep.Verdict.String()))
	fmt.Fprintf(w, "- baseline: %s\n- candidate: %s\n", mdCode(rep.Baseline), mdCode(rep.Candidate))
	for _, l := range headerLines(rep)[2:] {
		fmt.Fprintf(w, "- %s\n", mdEscape(l))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| operation | requests (base / cand) | P50 ms | P95 ms | P99 ms | P95 change (CI) | errors % | p (adj.) | verdict |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|")
	for _, r := range rows(rep) {
		fmt.Fprintf(w, "| %s | %.0f / %.0f | %s | %s | %s | %s | %s | %s | %s |\n", mdCell(r.name),
			r.res.BaselineRequests, r.res.CandidateRequests, quantiles(r, "p50"), quantiles(r, "p95"), quantiles(r, "p99"),
			change(r, "p95"), errorRates(r), pvalue(minP(r)), r.verdictText())
	}
	fmt.Fprintln(w)
	if ls := opLines(rep); len(ls) > 0 {
		for _, l := range ls {
			fmt.Fprintf(w, "- %s: %s\n", mdCode(l.name), mdEscape(l.text()))
			// An operation's attribution goes in a nested list item here.
		}
		fmt.Fprintln(w)
	}
	_, err := fmt.Fprintf(w, "**Verdict:** %s\n\n", verdictLine(rep, mdCode))
	return err
}

// mdEscape keeps text on one line and makes Markdown's inline markers
// literal: backslashes, backticks, emphasis, links and HTML tags
// (underscores inside words, as in metric names, are literal already).
func mdEscape(s string) string {
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == '\n':
			b.WriteByte(' ')
			continue
		case strings.ContainsRune("\\`*[", r):
			b.WriteByte('\\')
		case r == '<' && i+1 < len(s) && s[i+1] != ' ':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// mdCell is text in a table cell, where a pipe ends the cell.
func mdCell(s string) string { return strings.ReplaceAll(mdEscape(s), "|", `\|`) }

// mdCode renders a name as inline code, with a fence longer than any run
// of backticks in it.
func mdCode(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	fence := "`"
	for strings.Contains(s, fence) {
		fence += "`"
	}
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		return fence + " " + s + " " + fence
	}
	return fence + s + fence
}

type junitSuites struct {
	XMLName xml.Name   `xml:"testsuites"`
	Suites  []junitSui `xml:"testsuite"`
}

type junitSui struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Cases    []junitCase `xml:"testcase"`
	// SystemOut holds the header and the verdict line.
	SystemOut string `xml:"system-out,omitempty"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	ClassName string        `xml:"classname,attr"`
	Failure   *junitMessage `xml:"failure,omitempty"`
	Skipped   *junitMessage `xml:"skipped,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Text    string `xml:",chardata"`
}

// writeJUnit renders one test case per row: a regression fails with its
// decisive check as the message and every check's reason as the text, an
// inconclusive row is skipped, a flagged or passing one passes and says
// why. The suite's output holds the header and the verdict.
func writeJUnit(w io.Writer, rep *Report) error {
	s := junitSui{Name: "spanwatch gate " + rep.Service}
	for _, r := range rows(rep) {
		c := junitCase{Name: r.name, ClassName: rep.Service}
		switch {
		case r.flagged:
			c.SystemOut = opLine{flagged: true, check: decisive(r.res.Findings)}.text()
		case r.verdict == regress.Regression:
			c.Failure = &junitMessage{Message: opLine{check: decisive(r.res.Findings)}.text(), Text: checkReasons(r)}
			s.Failures++
		case r.verdict == regress.Inconclusive:
			c.Skipped = &junitMessage{Message: r.reasonTxt}
			s.Skipped++
		default:
			c.SystemOut = r.reasonTxt
		}
		s.Cases = append(s.Cases, c)
		s.Tests++
	}
	out := append([]string{title(rep)}, headerLines(rep)...)
	s.SystemOut = strings.Join(append(out, "verdict: "+verdictLine(rep, plainName)), "\n")
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(junitSuites{Suites: []junitSui{s}}); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// checkReasons lists every check of a row with its reason, one a line.
func checkReasons(r row) string {
	if len(r.res.Findings) == 0 {
		return r.reasonTxt
	}
	lines := make([]string, len(r.res.Findings))
	for i, f := range r.res.Findings {
		lines[i] = f.Reason
	}
	return strings.Join(lines, "\n")
}

// jsonScale is the scale change sized from every bucket (regress.Shift),
// present when it decided the check.
type jsonScale struct {
	Ratio  *float64 `json:"ratio"`
	CILow  *float64 `json:"ci_low"`
	CIHigh *float64 `json:"ci_high"`
	FitP   *float64 `json:"fit_p"`
}

// jsonFinding mirrors regress.Finding with NaN as null.
type jsonFinding struct {
	Check             string     `json:"check"`
	Baseline          *float64   `json:"baseline"`
	Candidate         *float64   `json:"candidate"`
	Ratio             *float64   `json:"ratio"`
	CILow             *float64   `json:"ci_low"`
	CIHigh            *float64   `json:"ci_high"`
	ResolutionLimited bool       `json:"resolution_limited"`
	Scale             *jsonScale `json:"scale,omitempty"`
	Test              string     `json:"test"`
	PValue            *float64   `json:"p_value"`
	AdjustedP         *float64   `json:"adjusted_p"`
	Significant       bool       `json:"significant"`
	Large             bool       `json:"large"`
	Enough            bool       `json:"enough_data"`
	Verdict           string     `json:"verdict"`
	Reason            string     `json:"reason"`
}

type jsonResult struct {
	Name              string        `json:"name"`
	Verdict           string        `json:"verdict"`
	Reason            string        `json:"reason"`
	BaselineRequests  float64       `json:"baseline_requests"`
	CandidateRequests float64       `json:"candidate_requests"`
	Findings          []jsonFinding `json:"findings"`
}

type jsonOut struct {
	Service      string       `json:"service"`
	Verdict      string       `json:"verdict"`
	Reason       string       `json:"reason"`
	Baseline     string       `json:"baseline"`
	Candidate    string       `json:"candidate"`
	Looks        int          `json:"looks"`
	PlannedLooks int          `json:"planned_looks"`
	WaitedSec    float64      `json:"waited_seconds"`
	Native       bool         `json:"native_histograms"`
	Notes        []string     `json:"notes,omitempty"`
	Results      []jsonResult `json:"results"`
	At           string       `json:"evaluated_at"`
}

func fp(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

func jsonReport(rep *Report) jsonOut {
	out := jsonOut{
		Service: rep.Service, Verdict: rep.Verdict.String(), Reason: rep.Result.Reason,
		Baseline: rep.Baseline, Candidate: rep.Candidate, Looks: rep.Looks, PlannedLooks: rep.PlannedLooks,
		WaitedSec: rep.Waited.Seconds(), Native: rep.Native, Notes: rep.Notes, At: rep.At.UTC().Format("2006-01-02T15:04:05Z"),
	}
	for _, r := range rows(rep) {
		jr := jsonResult{Name: r.name, Verdict: r.verdictText(), Reason: r.reasonTxt,
			BaselineRequests: r.res.BaselineRequests, CandidateRequests: r.res.CandidateRequests}
		for _, f := range r.res.Findings {
			jr.Findings = append(jr.Findings, jsonFinding{
				Check: f.Check, Baseline: fp(f.Baseline), Candidate: fp(f.Candidate), Ratio: fp(f.Ratio),
				CILow: fp(f.CILow), CIHigh: fp(f.CIHigh), ResolutionLimited: f.ResolutionLimited, Test: f.Test,
				PValue: fp(f.PValue), AdjustedP: fp(f.AdjustedP), Significant: f.Significant, Large: f.Large,
				Enough: f.Enough, Verdict: f.Verdict.String(), Reason: f.Reason, Scale: scaleOf(f),
			})
		}
		out.Results = append(out.Results, jr)
	}
	return out
}

func scaleOf(f regress.Finding) *jsonScale {
	if !f.ShiftSized {
		return nil
	}
	return &jsonScale{Ratio: fp(f.Shift.Ratio), CILow: fp(f.Shift.Low), CIHigh: fp(f.Shift.High), FitP: fp(f.Shift.FitP)}
}

// JSON returns the value `spanwatch gate --format json` encodes, for
// callers that embed the report in their own JSON (the compare API).
func JSON(rep *Report) any { return jsonReport(rep) }
