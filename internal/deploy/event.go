package deploy

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Labels of the span-metric series that identify a deployment's group and
// version.
const (
	ServiceLabel     = "service_name"
	JobLabel         = "job" // service.namespace/service.name
	EnvironmentLabel = "deployment_environment"
	VersionLabel     = "service_version"
)

// Group is where versions replace each other: a service in a namespace and,
// where the spans carry it, a deployment environment.
type Group struct {
	Service     string `json:"service"`
	Namespace   string `json:"namespace"`
	Environment string `json:"environment,omitempty"`
	// Job is the job label (namespace/service, or service), which selects
	// the namespace in queries.
	Job string `json:"job"`
}

// GroupOf builds a group from series labels.
func GroupOf(service, job, env string) Group {
	g := Group{Service: service, Job: job, Environment: env}
	if ns, svc, ok := strings.Cut(job, "/"); ok && svc == service {
		g.Namespace = ns
	}
	return g
}

func (g Group) key() string { return g.Service + "\x00" + g.Job + "\x00" + g.Environment }

// Shape is how a rollout unfolds.
type Shape string

// Rollout shapes.
const (
	// ShapeCanary: the new version serves beside the previous one.
	ShapeCanary Shape = "canary"
	// ShapeRolling: the previous version's traffic falls to zero over
	// more than one flush interval.
	ShapeRolling Shape = "rolling"
	// ShapeSwitch: the previous version stopped within one flush interval
	// (recreate, big bang).
	ShapeSwitch Shape = "switch"
	// ShapeRollback: the new version is one seen before.
	ShapeRollback Shape = "rollback"
)

// State and verdict values.
const (
	StateWatching = "watching"
	StateDecided  = "decided"

	VerdictPending      = "pending"
	VerdictPass         = "pass"
	VerdictRegression   = "regression"
	VerdictInconclusive = "inconclusive"
)

// Comparison modes of an event's verdict.
const (
	// ModeSameWindow compares both versions over the same window (canary).
	ModeSameWindow = "same-window"
	// ModeBeforeAfter compares the previous version before its traffic
	// fell with the new version after the rollout: time-shifted.
	ModeBeforeAfter = "before-after"
)

// Event is one deployment: a new version of a group, and what became of it.
type Event struct {
	ID string `json:"id"`
	Group
	Version string `json:"version"`
	// PreviousVersion is the version replaced: the group's current version
	// when the new one appeared. PreviousVersions lists every version still
	// serving then, PreviousVersion first.
	PreviousVersion  string    `json:"previous_version"`
	PreviousVersions []string  `json:"previous_versions"`
	FirstSeen        time.Time `json:"first_seen"`
	Shape            Shape     `json:"shape"`
	State            string    `json:"state"`
	Verdict          string    `json:"verdict"`
	Mode             string    `json:"mode,omitempty"`
	Reason           string    `json:"reason"`
	// Report is the gate's JSON report of the verdict (or of the latest
	// look while watching).
	Report    json.RawMessage `json:"report"`
	DecidedAt time.Time       `json:"decided_at,omitzero"`
	// Rule inputs, kept so that a restart resumes the same comparison.
	// BaselineRate is the previous version's request rate (per second)
	// over the window before FirstSeen; negative until read.
	BaselineRate float64 `json:"baseline_rate"`
	// FallAt is the first look at which the previous version's rate was
	// below BaselineRate; EndAt the first look at which it served nothing
	// in the activity window (the rollout's end).
	FallAt time.Time `json:"fall_at,omitzero"`
	EndAt  time.Time `json:"end_at,omitzero"`
	// Compared is what the latest look compared: the gate request's two
	// arms (matchers and, before/after, their ranges; an open candidate
	// range ends at the look), so that a reader can run the same comparison.
	Compared *Compared `json:"compared,omitempty"`
	// Rebuilt marks an event found in stored data rather than as it
	// happened (after a restart without a record, or a deploy while down).
	Rebuilt bool `json:"rebuilt,omitempty"`
}

// Compared is the two populations of an event's comparison, as the gate's
// request arms take them (RFC 3339 times; empty: the arm's default).
type Compared struct {
	Baseline  ComparedArm `json:"baseline"`
	Candidate ComparedArm `json:"candidate"`
}

// ComparedArm is one population of Compared.
type ComparedArm struct {
	Matchers string `json:"matchers"`
	Start    string `json:"start,omitempty"`
	End      string `json:"end,omitempty"`
}

// eventID is stable for one group, version and first-seen time.
func eventID(g Group, version string, firstSeen time.Time) string {
	h := sha256.Sum256(fmt.Appendf(nil, "%s\x00%s\x00%d", g.key(), version, firstSeen.UnixMilli()))
	return hex.EncodeToString(h[:8])
}

// Deadline is when watching ends: max_wait after the first-seen time.
func (e *Event) Deadline(maxWait time.Duration) time.Time { return e.FirstSeen.Add(maxWait) }

// Progress applies one look at now to an event whose rollout has not
// ended (a verdict may already be in: the shape still unfolds): prevRequests are
// the previous version's requests in the activity window ending at now.
// It records the fall and the end of the previous version's traffic and
// the shape while both versions serve. It returns true when this look
// found the rollout's end; the caller then settles the shape with
// SettleShape.
func (e *Event) Progress(now time.Time, prevRequests float64, activity time.Duration) bool {
	if !e.EndAt.IsZero() || now.Before(e.FirstSeen) || e.PreviousVersion == "" {
		return false
	}
	rate := prevRequests / activity.Seconds()
	if e.FallAt.IsZero() && e.BaselineRate >= 0 && rate < e.BaselineRate {
		e.FallAt = now
	}
	if prevRequests <= 0 {
		e.EndAt = now
		if e.FallAt.IsZero() {
			e.FallAt = now
		}
		return true
	}
	if e.Shape != ShapeRollback {
		e.Shape = ShapeCanary
		if e.BaselineRate > 0 && rate < e.BaselineRate/2 {
			e.Shape = ShapeRolling // falling: unfolding as a rolling update
		}
	}
	return false
}

// SettleShape fixes the shape once the rollout has ended: servedLate are
// the previous version's requests after FirstSeen plus two flush intervals
// (one flush, and one for where samples fall). None: a switch.
func (e *Event) SettleShape(servedLate float64) {
	if e.Shape == ShapeRollback {
		return
	}
	e.Shape = ShapeRolling
	if servedLate <= 0 {
		e.Shape = ShapeSwitch
	}
}

// SwitchCutoff is the time after which a previous version that still
// served makes the rollout rolling rather than a switch.
func (e *Event) SwitchCutoff(flush time.Duration) time.Time { return e.FirstSeen.Add(2 * flush) }

// Windows are the populations an event's verdict compares.
type Windows struct {
	Mode string
	// Baseline is the previous version: over the last window at each look
	// (same-window), or over [BaselineStart, BaselineEnd] (before-after).
	BaselineVersion            string
	BaselineStart, BaselineEnd time.Time
	CandidateVersion           string
	CandidateStart             time.Time // before-after: from here to each look
	Wait                       bool      // no comparison yet: wait for the next look
	NoPrevious                 bool      // nothing to compare with: inconclusive
}

// VerdictWindows is the rule for an event's verdict, with window the gate's
// analysis window W:
//   - While the previous version serves (canary, or a rollout not finished):
//     same-window mode, the new version against the previous one over the
//     last W at each look, as `spanwatch gate` does by default.
//   - Once the previous version has stopped (rolling, switch, or a
//     rollback that replaced the version): before-after mode, the previous
//     version over [t_fall − W, t_fall], where t_fall is the first look at
//     which its rate fell below its rate in the W before first_seen
//     (≈ first_seen), against the new version from the rollout's end (the
//     first look with no previous traffic) to each look, with offset
//     mode's thresholds.
//
// A verdict reached in same-window mode stands; one not reached when the
// rollout ends is sought again in before-after mode.
func (e *Event) VerdictWindows(window time.Duration) Windows {
	w := Windows{BaselineVersion: e.PreviousVersion, CandidateVersion: e.Version}
	switch {
	case e.PreviousVersion == "":
		w.NoPrevious = true
	case e.EndAt.IsZero():
		w.Mode = ModeSameWindow
	default:
		w.Mode = ModeBeforeAfter
		fall := e.FallAt
		if fall.IsZero() {
			fall = e.FirstSeen
		}
		w.BaselineStart, w.BaselineEnd = fall.Add(-window), fall
		w.CandidateStart = e.EndAt
	}
	return w
}
