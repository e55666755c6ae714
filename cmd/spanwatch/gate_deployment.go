package main

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/api"

	"github.com/spanwatch/spanwatch/internal/gate"
	"github.com/spanwatch/spanwatch/internal/regress"
)

// serverDeployment is an event of GET /api/v1/deployments.
type serverDeployment struct {
	ID              string          `json:"id"`
	Service         string          `json:"service"`
	Namespace       string          `json:"namespace"`
	Version         string          `json:"version"`
	PreviousVersion string          `json:"previous_version"`
	Shape           string          `json:"shape"`
	FirstSeen       time.Time       `json:"first_seen"`
	State           string          `json:"state"`
	Verdict         string          `json:"verdict"`
	Mode            string          `json:"mode"`
	Reason          string          `json:"reason"`
	Report          json.RawMessage `json:"report"`
}

// waitDeployment polls the server's deployments until the one asked for
// is decided or --max-wait has passed.
func (c *gateCmd) waitDeployment(ctx context.Context, client api.Client, stdout, stderr io.Writer) (int, error) {
	for flag, given := range map[string]bool{
		"--baseline": c.baseline != "", "--candidate": c.candidate != "", "--baseline-offset": c.baselineOffset > 0,
		"--baseline-range": c.baselineRange != "", "--candidate-range": c.candidateRange != "",
		"--operation": len(c.operations) > 0, "--window": *c.set["window"],
	} {
		if given {
			return gateUsage, usageError{fmt.Errorf("--deployment waits for the server's verdict, whose populations the server chose: %s does not apply", flag)}
		}
	}
	p, err := c.prepareRollback(ctx, stderr)
	if err != nil {
		return gateUsage, err
	}
	var rb gate.Rollback
	if p != nil {
		rb = p
	}
	start := c.now()
	deadline := start.Add(time.Duration(c.maxWait))
	for look := 1; ; look++ {
		d, err := c.fetchDeployment(ctx, client)
		if err != nil {
			return exitFor(err), err
		}
		switch {
		case d != nil && d.State == "decided":
			return c.reportDeployment(ctx, d, rb, stdout, stderr)
		case d == nil:
			fmt.Fprintf(stderr, "look %d: spanwatch has seen no deployment %s of %s yet\n", look, c.deployment, c.service)
		default:
			fmt.Fprintf(stderr, "look %d: deployment %s of %s %s (%s, replacing %s) is being watched: %s\n",
				look, d.ID, d.Service, d.Version, d.Shape, d.PreviousVersion, d.Reason)
		}
		wait := deadline.Sub(c.now())
		if wait <= 0 {
			msg := fmt.Sprintf("no verdict from the server for deployment %s of %s within --max-wait %s: not a pass", c.deployment, c.service, c.maxWait)
			fmt.Fprintln(stdout, "inconclusive: "+msg)
			return c.exitCode(regress.Inconclusive), nil
		}
		if err := gate.Sleep(ctx, min(time.Duration(c.poll), wait)); err != nil {
			return gateInconclusive, err
		}
	}
}

// fetchDeployment returns the deployment asked for, or nil when the server
// has none yet.
func (c *gateCmd) fetchDeployment(ctx context.Context, client api.Client) (*serverDeployment, error) {
	u := client.URL("/api/v1/deployments", nil)
	u.RawQuery = url.Values{"service": {c.service}, "limit": {"1000"}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, body, err := client.Do(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", gate.ErrBackend, u.Redacted(), err)
	}
	var env struct {
		Status    string             `json:"status"`
		Data      []serverDeployment `json:"data"`
		ErrorType string             `json:"errorType"`
		Error     string             `json:"error"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, fmt.Errorf("%w: %s answered %s, not the deployments API (is --url a spanwatch server?)", gate.ErrBackend, u.Redacted(), resp.Status)
	}
	switch {
	case resp.StatusCode == http.StatusBadRequest:
		return nil, usageError{fmt.Errorf("the server refused the request: %s", env.Error)}
	case env.Status != "success":
		return nil, fmt.Errorf("%w: %s: %s %s", gate.ErrBackend, u.Redacted(), env.ErrorType, env.Error)
	}
	for i := range env.Data { // newest first
		d := &env.Data[i]
		if c.deployment == "latest" || d.Version == c.deployment {
			return d, nil
		}
	}
	return nil, nil
}

func (c *gateCmd) reportDeployment(ctx context.Context, d *serverDeployment, rb gate.Rollback, stdout, stderr io.Writer) (int, error) {
	var v regress.Verdict
	switch d.Verdict {
	case "pass":
		v = regress.Pass
	case "regression":
		v = regress.Regression
	default:
		v = regress.Inconclusive
	}
	title := fmt.Sprintf("deployment %s: %s %s (%s, replacing %s, first seen %s): %s",
		d.ID, d.Service, d.Version, d.Shape, d.PreviousVersion, d.FirstSeen.UTC().Format(time.RFC3339), d.Verdict)
	switch c.format {
	case "json":
		b, err := json.MarshalIndent(d, "", "  ")
		if err != nil {
			return gateUsage, err
		}
		fmt.Fprintln(stdout, string(b))
	case "junit":
		type failure struct {
			Message string `xml:"message,attr"`
			Text    string `xml:",chardata"`
		}
		type testcase struct {
			Name    string   `xml:"name,attr"`
			Failure *failure `xml:"failure,omitempty"`
		}
		tc := testcase{Name: d.Service + " " + d.Version}
		if v != regress.Pass {
			tc.Failure = &failure{Message: d.Verdict, Text: d.Reason}
		}
		suite := struct {
			XMLName  xml.Name   `xml:"testsuite"`
			Name     string     `xml:"name,attr"`
			Tests    int        `xml:"tests,attr"`
			Failures int        `xml:"failures,attr"`
			Cases    []testcase `xml:"testcase"`
		}{Name: "spanwatch deployment " + d.ID, Tests: 1, Cases: []testcase{tc}}
		if tc.Failure != nil {
			suite.Failures = 1
		}
		b, err := xml.MarshalIndent(suite, "", "  ")
		if err != nil {
			return gateUsage, err
		}
		fmt.Fprintln(stdout, xml.Header+string(b))
	case "markdown":
		fmt.Fprintf(stdout, "### %s\n\n%s\n", title, d.Reason)
	default:
		fmt.Fprintf(stdout, "%s\n%s\n", title, d.Reason)
	}
	if v == regress.Regression && rb != nil {
		what, err := rb.Undo(ctx, c.dryRun)
		if err != nil {
			return gateRegression, fmt.Errorf("rollback: %w", err)
		}
		fmt.Fprintf(stderr, "rollback: %s\n", what)
	}
	return c.exitCode(v), nil
}
