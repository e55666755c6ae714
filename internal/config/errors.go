package config

import (
	"errors"
	"regexp"
	"strconv"
	"strings"
)

var (
	// ErrUnknownKey marks a key that no field of its section accepts.
	ErrUnknownKey = errors.New("unknown key")
	// ErrDuplicateKey marks a key set twice in the same mapping.
	ErrDuplicateKey = errors.New("duplicate key")
)

// Error is one problem at one place in a config file. Parse and Load return
// every problem they find, each as an *Error, joined with errors.Join; the
// message has one problem per line.
type Error struct {
	// File is the file name as given to Load or Parse.
	File string
	// Line is 1-based; 0 when the problem has no place in the file (for
	// example an invalid default of a key the file does not set).
	Line int
	// Path is the key path, such as spanmetrics.histogram.explicit.buckets[3];
	// empty for YAML syntax errors.
	Path string
	// Err is the problem itself.
	Err error
}

// Error renders "file:line: path: problem", leaving out the parts that are
// unknown.
func (e *Error) Error() string {
	var b strings.Builder
	switch {
	case e.File != "" && e.Line > 0:
		b.WriteString(e.File + ":" + strconv.Itoa(e.Line) + ": ")
	case e.File != "":
		b.WriteString(e.File + ": ")
	case e.Line > 0:
		b.WriteString("line " + strconv.Itoa(e.Line) + ": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

// Unwrap returns the underlying problem.
func (e *Error) Unwrap() error { return e.Err }

// yamlLineRE matches the "line N: " that yaml.v3 puts in its messages.
var yamlLineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): `)

// splitYAMLError takes yaml.v3's "yaml: line N: msg" apart.
func splitYAMLError(msg string) (line int, rest string) {
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		return line, msg[len(m[0]):]
	}
	return 0, strings.TrimPrefix(msg, "yaml: ")
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// suggest returns the candidate closest to key, or "" when none is close
// enough to be a likely typo.
func suggest(key string, candidates []string) string {
	best, bestD := "", 3
	norm := strings.ToLower(strings.ReplaceAll(key, "-", "_"))
	for _, c := range candidates {
		if norm == c {
			return c
		}
		if d := editDistance(norm, c); d < bestD && d < len(key) {
			best, bestD = c, d
		}
	}
	return best
}
