package rollback

// The human-readable summary of what a rollback changes in a Deployment.

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

const (
	// diffValueMax caps a rendered value; longer ones end in "…".
	diffValueMax = 120
	unset        = "(unset)"
	redacted     = "(value hidden)"
)

// secretWords mark environment variables whose literal values the
// diff does not print: the diff goes to CI logs and job summaries.
var secretWords = []string{"PASSWORD", "PASSWD", "SECRET", "TOKEN", "KEY", "CREDENTIAL", "AUTH", "PRIVATE", "DSN"}

// templateDiff summarises the change from the current pod template and
// Deployment annotations to the restored ones, one line per item, in a
// stable order: init containers, containers, other pod spec fields, pod
// labels and annotations, other pod metadata, Deployment annotations.
func templateDiff(cur, next *corev1.PodTemplateSpec, curAnnotations, nextAnnotations map[string]string) string {
	var lines []string
	lines = append(lines, containersDiff("init container", cur.Spec.InitContainers, next.Spec.InitContainers)...)
	lines = append(lines, containersDiff("container", cur.Spec.Containers, next.Spec.Containers)...)
	lines = append(lines, fieldsDiff("pod spec", cur.Spec, next.Spec, "containers", "initContainers")...)
	lines = append(lines, mapDiff("pod label", withoutHash(cur.Labels), withoutHash(next.Labels))...)
	lines = append(lines, mapDiff("pod annotation", cur.Annotations, next.Annotations)...)
	lines = append(lines, fieldsDiff("pod metadata", cur.ObjectMeta, next.ObjectMeta, "labels", "annotations")...)
	lines = append(lines, mapDiff("deployment annotation", curAnnotations, nextAnnotations)...)
	if len(lines) == 0 {
		// Semantically different but nothing we render differs (e.g. a
		// field whose JSON form is the same): say so rather than nothing.
		return "pod template changes (no field-level summary available)"
	}
	return strings.Join(lines, "\n")
}

// containersDiff pairs containers by name.
func containersDiff(what string, cur, next []corev1.Container) []string {
	var lines []string
	curByName := make(map[string]*corev1.Container, len(cur))
	for i := range cur {
		curByName[cur[i].Name] = &cur[i]
	}
	nextNames := make(map[string]bool, len(next))
	for i := range next {
		n := &next[i]
		nextNames[n.Name] = true
		prefix := what + " " + n.Name + ": "
		c, ok := curByName[n.Name]
		if !ok {
			lines = append(lines, prefix+"added (image "+n.Image+")")
			continue
		}
		if c.Image != n.Image {
			lines = append(lines, prefix+"image "+c.Image+" -> "+n.Image)
		}
		lines = append(lines, envDiff(prefix, c.Env, n.Env)...)
		lines = append(lines, fieldsDiff(what+" "+n.Name, *c, *n, "name", "image", "env")...)
	}
	for i := range cur {
		if !nextNames[cur[i].Name] {
			lines = append(lines, what+" "+cur[i].Name+": removed (image "+cur[i].Image+")")
		}
	}
	if len(lines) == 0 && len(cur) == len(next) {
		for i := range cur {
			if cur[i].Name != next[i].Name {
				lines = append(lines, what+"s: order changed")
				break
			}
		}
	}
	return lines
}

// envDiff compares environment variables by name (the last
// definition of a name wins, as in the container runtime).
func envDiff(prefix string, cur, next []corev1.EnvVar) []string {
	curVals, nextVals := envValues(cur), envValues(next)
	var lines []string
	for _, name := range sortedKeys(curVals, nextVals) {
		a, inCur := curVals[name]
		b, inNext := nextVals[name]
		switch {
		case !inCur:
			lines = append(lines, prefix+"env "+name+": "+unset+" -> "+b.shown)
		case !inNext:
			lines = append(lines, prefix+"env "+name+": "+a.shown+" -> "+unset)
		case a.value == b.value:
		case a.shown == b.shown: // hidden, or equal after truncation
			lines = append(lines, prefix+"env "+name+": value changed "+a.shown)
		default:
			lines = append(lines, prefix+"env "+name+": "+a.shown+" -> "+b.shown)
		}
	}
	if len(lines) == 0 && !slices.EqualFunc(cur, next, func(x, y corev1.EnvVar) bool { return x.Name == y.Name }) {
		lines = append(lines, prefix+"env: order changed")
	}
	return lines
}

// envValue is an environment variable's value for comparison and
// as printed: literal values of variables named like secrets are hidden.
type envValue struct{ value, shown string }

func envValues(env []corev1.EnvVar) map[string]envValue {
	out := make(map[string]envValue, len(env))
	for _, e := range env {
		var v envValue
		switch {
		case e.ValueFrom != nil:
			v.value = "from " + render(e.ValueFrom)
			v.shown = v.value
		case isSecretName(e.Name):
			v.value = "=" + e.Value
			v.shown = redacted
		default:
			v.value = "=" + e.Value
			v.shown = truncate(strconv.Quote(e.Value))
		}
		out[e.Name] = v
	}
	return out
}

func isSecretName(name string) bool {
	upper := strings.ToUpper(name)
	for _, w := range secretWords {
		if strings.Contains(upper, w) {
			return true
		}
	}
	return false
}

// fieldsDiff compares the top-level JSON fields of two values of
// the same type, skipping the given ones, and prints each differing field.
func fieldsDiff(what string, cur, next any, skip ...string) []string {
	a, b := jsonFields(cur), jsonFields(next)
	for _, k := range skip {
		delete(a, k)
		delete(b, k)
	}
	var lines []string
	for _, k := range sortedKeys(a, b) {
		av, inA := a[k]
		bv, inB := b[k]
		if inA && inB && string(av) == string(bv) {
			continue
		}
		from, to := unset, unset
		if inA {
			from = truncate(string(av))
		}
		if inB {
			to = truncate(string(bv))
		}
		lines = append(lines, what+": "+k+": "+from+" -> "+to)
	}
	return lines
}

// jsonFields returns v's JSON object members (omitempty drops unset
// fields, so "unset" and "empty" compare equal, as in the API).
func jsonFields(v any) map[string]json.RawMessage {
	raw, err := json.Marshal(v)
	if err != nil {
		return map[string]json.RawMessage{"(unrenderable)": json.RawMessage(strconv.Quote(err.Error()))}
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return map[string]json.RawMessage{}
	}
	return m
}

// mapDiff compares string maps (labels, annotations).
func mapDiff(what string, cur, next map[string]string) []string {
	var lines []string
	for _, k := range sortedKeys(cur, next) {
		a, inA := cur[k]
		b, inB := next[k]
		if inA && inB && a == b {
			continue
		}
		from, to := unset, unset
		if inA {
			from = truncate(strconv.Quote(a))
		}
		if inB {
			to = truncate(strconv.Quote(b))
		}
		lines = append(lines, what+" "+k+": "+from+" -> "+to)
	}
	return lines
}

func withoutHash(labels map[string]string) map[string]string {
	if _, ok := labels[appsv1.DefaultDeploymentUniqueLabelKey]; !ok {
		return labels
	}
	out := maps.Clone(labels)
	delete(out, appsv1.DefaultDeploymentUniqueLabelKey)
	return out
}

func sortedKeys[V any](a, b map[string]V) []string {
	keys := slices.Collect(maps.Keys(a))
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// render is v as compact JSON, truncated.
func render(v any) string {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%v", v)
	}
	return truncate(string(raw))
}

func truncate(s string) string {
	if len(s) <= diffValueMax {
		return s
	}
	cut := diffValueMax
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
