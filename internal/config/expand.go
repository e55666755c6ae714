package config

import (
	"fmt"
	"strings"
)

// expandEnv replaces environment references in s, as the OpenTelemetry
// Collector and Prometheus do in their config files:
//
//	${NAME}, $NAME     the value of NAME; empty when NAME is unset
//	${env:NAME}        the same (the Collector's spelling)
//	${NAME:-default}   default when NAME is unset or empty
//	$$                 a literal $
//
// A $ followed by anything else (a digit, a space, the end) stays as it is.
// NAME is [A-Za-z_][A-Za-z0-9_]*. It reports whether anything was replaced.
func expandEnv(s string, lookup func(string) (string, bool)) (string, bool, error) {
	if !strings.Contains(s, "$") {
		return s, false, nil
	}
	var b strings.Builder
	changed := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '$' || i+1 == len(s) {
			b.WriteByte(c)
			continue
		}
		switch next := s[i+1]; {
		case next == '$':
			b.WriteByte('$')
			i++
			changed = true
		case next == '{':
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				return "", false, fmt.Errorf("unterminated \"${\" in %q", s)
			}
			ref := s[i+2 : i+2+end]
			name, def, hasDef := strings.Cut(ref, ":-")
			name = strings.TrimPrefix(name, "env:")
			if !isEnvName(name) {
				return "", false, fmt.Errorf("invalid environment reference %q", s[i:i+3+end])
			}
			v, _ := lookup(name)
			if v == "" && hasDef {
				v = def
			}
			b.WriteString(v)
			i += 2 + end
			changed = true
		case isNameStart(next):
			j := i + 2
			for j < len(s) && isNameChar(s[j]) {
				j++
			}
			v, _ := lookup(s[i+1 : j])
			b.WriteString(v)
			i = j - 1
			changed = true
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), changed, nil
}

func isNameStart(c byte) bool { return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }
func isNameChar(c byte) bool  { return isNameStart(c) || (c >= '0' && c <= '9') }

func isEnvName(s string) bool {
	if s == "" || !isNameStart(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !isNameChar(s[i]) {
			return false
		}
	}
	return true
}
