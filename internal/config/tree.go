package config

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// YAML short tags, as yaml.Node.ShortTag returns them.
const (
	nullTag  = "!!null"
	strTag   = "!!str"
	intTag   = "!!int"
	floatTag = "!!float"
	mergeTag = "!!merge"
)

// tree is one config file on its way to a File: the parsed YAML, the line of
// every key path in it and the problems found so far.
//
// yaml.v3 can decode strictly (Decoder.KnownFields) only from bytes, not from
// a yaml.Node, and its messages carry a line but no key path. So the loader
// parses into a node tree, expands the environment in it, checks it against
// the target type itself (unknown and duplicate keys, kinds, every scalar),
// and only then lets yaml.v3 decode the checked tree over the defaults.
type tree struct {
	file  string
	lines map[string]int // key path -> line of the key or sequence element
	errs  []error
}

func (t *tree) add(line int, path string, err error) {
	t.errs = append(t.errs, &Error{File: t.file, Line: line, Path: path, Err: err})
}

func (t *tree) addf(line int, path, format string, args ...any) {
	t.add(line, path, fmt.Errorf(format, args...))
}

func (t *tree) err() error { return errors.Join(t.errs...) }

// parse reads the single YAML document in data. It returns a nil node for a
// file that holds nothing (empty, only comments, or null).
func (t *tree) parse(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		line, msg := splitYAMLError(err.Error())
		return nil, &Error{File: t.file, Line: line, Err: errors.New(msg)}
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		line, msg := splitYAMLError(err.Error())
		return nil, &Error{File: t.file, Line: line, Err: errors.New(msg)}
	default:
		return nil, &Error{File: t.file, Line: extra.Line, Err: errors.New("a second YAML document; the file must hold one")}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return nil, nil
		}
		root = root.Content[0]
	}
	if isNull(root) {
		return nil, nil
	}
	return root, nil
}

// index records the line of every key and sequence element under n and
// expands environment references in scalar values (never in keys).
func (t *tree) index(n *yaml.Node, path string, lookup func(string) (string, bool)) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := joinKey(path, k.Value)
			if _, ok := t.lines[p]; !ok {
				t.lines[p] = k.Line
			}
			t.index(v, p, lookup)
		}
	case yaml.SequenceNode:
		for i, e := range n.Content {
			p := joinIndex(path, i)
			t.lines[p] = e.Line
			t.index(e, p, lookup)
		}
	case yaml.ScalarNode:
		v, changed, err := expandEnv(n.Value, lookup)
		if err != nil {
			t.add(n.Line, path, err)
			return
		}
		if changed {
			n.Value = v
			// The parser resolved the tag of a plain scalar from its text
			// before expansion ("${LIMIT}" is a string); resolve it again
			// from the expanded text. Quoted and explicitly tagged
			// scalars keep theirs.
			if n.Style&(yaml.TaggedStyle|yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) == 0 {
				n.Tag = ""
			}
		}
	}
}

// lineOf returns the line of path, or of its closest ancestor in the file,
// or 0.
func (t *tree) lineOf(path string) int {
	for path != "" {
		if l, ok := t.lines[path]; ok {
			return l
		}
		path = parentPath(path)
	}
	return 0
}

// pathAt returns the most specific key path on line, for yaml.v3 messages
// that carry only a line.
func (t *tree) pathAt(line int) string {
	best := ""
	for p, l := range t.lines {
		if l == line && (len(p) > len(best) || len(p) == len(best) && p < best) {
			best = p
		}
	}
	return best
}

// addYAML records an error from yaml.v3, one entry per line it reports.
func (t *tree) addYAML(err error, line int, path string) {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		l, msg := splitYAMLError(err.Error())
		if l == 0 {
			l = line
		}
		t.add(l, path, errors.New(msg))
		return
	}
	for _, e := range te.Errors {
		l, msg := splitYAMLError(e)
		p := path
		if l == 0 {
			l = line
		} else if at := t.pathAt(l); strings.HasPrefix(at, path) {
			p = at
		}
		t.add(l, p, errors.New(msg))
	}
}

func joinKey(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func joinIndex(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

func parentPath(path string) string {
	if strings.HasSuffix(path, "]") {
		if i := strings.LastIndexByte(path, '['); i >= 0 {
			return path[:i]
		}
	}
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		return path[:i]
	}
	return ""
}

// dropNullValues removes the pairs of a mapping that decodes into a struct
// whose value is null ("key:", "key: ~", or "key: ${UNSET}"), so that such a
// key keeps its default like an absent one. yaml.v3 would otherwise keep the
// default of a scalar but set a list, map or pointer to nil.
func dropNullValues(n *yaml.Node) {
	kept := n.Content[:0]
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if isNull(v) && k.ShortTag() != mergeTag {
			continue
		}
		kept = append(kept, k, v)
	}
	n.Content = kept
}

// nullable reports whether yaml.v3 can decode null into typ.
func nullable(typ reflect.Type) bool {
	switch typ.Kind() {
	case reflect.Pointer, reflect.Interface, reflect.Map, reflect.Slice:
		return true
	}
	return false
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == nullTag
}

var (
	durationType       = reflect.TypeFor[time.Duration]()
	unmarshalerType    = reflect.TypeFor[yaml.Unmarshaler]()
	oldUnmarshalerType = reflect.TypeFor[interface {
		UnmarshalYAML(func(any) error) error
	}]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// check walks n against the Go type typ the way yaml.v3 will decode it, and
// records every unknown or duplicate key, every node of the wrong kind and
// every scalar that does not parse, each with its own line and path. It
// rewrites a bare 0 for a duration to "0s" (the one bare number that has an
// obvious meaning).
func (t *tree) check(n *yaml.Node, typ reflect.Type, path string) {
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			return
		}
		n = n.Alias
	}
	if isNull(n) {
		return // decodes to the zero value or keeps the default; see dropNullValues
	}
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	if pt := reflect.PointerTo(typ); pt.Implements(unmarshalerType) || pt.Implements(oldUnmarshalerType) ||
		(n.Kind == yaml.ScalarNode && pt.Implements(textUnmarshalerType)) {
		// The type decodes itself; let it say what is wrong.
		if err := n.Decode(reflect.New(typ).Interface()); err != nil {
			t.addYAML(err, n.Line, path)
		}
		return
	}
	switch typ.Kind() {
	case reflect.Struct:
		if !t.wantKind(n, yaml.MappingNode, path) {
			return
		}
		fs := fieldsOf(typ)
		t.checkMapping(n, path, func(k, v *yaml.Node, p string) {
			if ft, ok := fs.byName[k.Value]; ok {
				t.check(v, ft, p)
				return
			}
			if fs.inlineMap != nil {
				t.check(v, fs.inlineMap, p)
				return
			}
			t.add(k.Line, p, unknownKey(k.Value, path, fs))
		}, func(v *yaml.Node) { t.check(v, typ, path) })
		dropNullValues(n)
	case reflect.Map:
		if !t.wantKind(n, yaml.MappingNode, path) {
			return
		}
		kt := typ.Key()
		t.checkMapping(n, path, func(k, v *yaml.Node, p string) {
			if kt.Kind() != reflect.String && kt.Kind() != reflect.Interface {
				t.check(k, kt, p)
			}
			t.check(v, typ.Elem(), p)
		}, func(v *yaml.Node) { t.check(v, typ, path) })
	case reflect.Slice, reflect.Array:
		if !t.wantKind(n, yaml.SequenceNode, path) {
			return
		}
		if typ.Kind() == reflect.Array && len(n.Content) != typ.Len() {
			t.addf(n.Line, path, "expected a list of %d, got %d", typ.Len(), len(n.Content))
		}
		for i, e := range n.Content {
			if isNull(e) && !nullable(typ.Elem()) {
				// yaml.v3 would silently drop the element.
				t.addf(e.Line, joinIndex(path, i), "empty list element")
				continue
			}
			t.check(e, typ.Elem(), joinIndex(path, i))
		}
	case reflect.Interface:
		// Anything decodes into an interface.
	default:
		if t.wantKind(n, yaml.ScalarNode, path) {
			t.checkScalar(n, typ, path)
		}
	}
}

// checkMapping walks the pairs of n, reporting duplicate keys and non-scalar
// keys, following merge keys (<<) with merge.
func (t *tree) checkMapping(n *yaml.Node, path string, pair func(k, v *yaml.Node, p string), merge func(v *yaml.Node)) {
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == mergeTag {
			if v.Kind == yaml.SequenceNode {
				for _, m := range v.Content {
					merge(m)
				}
			} else {
				merge(v)
			}
			continue
		}
		if k.Kind != yaml.ScalarNode {
			t.addf(k.Line, path, "a key must be a plain value, got %s", describe(k))
			continue
		}
		p := joinKey(path, k.Value)
		if first, ok := seen[k.Value]; ok {
			t.add(k.Line, p, fmt.Errorf("%w (first set on line %d)", ErrDuplicateKey, first))
			continue
		}
		seen[k.Value] = k.Line
		pair(k, v, p)
	}
}

func unknownKey(key, parent string, fs fields) error {
	if s := suggest(key, fs.names); s != "" {
		return fmt.Errorf("%w (did you mean %q?)", ErrUnknownKey, s)
	}
	if parent == "" {
		return fmt.Errorf("%w (sections are %s)", ErrUnknownKey, strings.Join(fs.names, ", "))
	}
	if !strings.ContainsAny(parent, ".[") {
		// Directly under a section: maybe a key of another section, such
		// as naming under spanmetrics.
		sections := fieldsOf(reflect.TypeFor[File]())
		for _, s := range sections.names {
			st := sections.byName[s]
			for st.Kind() == reflect.Pointer {
				st = st.Elem()
			}
			if s == parent || st.Kind() != reflect.Struct {
				continue
			}
			if _, ok := fieldsOf(st).byName[key]; ok {
				return fmt.Errorf("%w (did you mean %s.%s?)", ErrUnknownKey, s, key)
			}
		}
	}
	return ErrUnknownKey
}

func (t *tree) wantKind(n *yaml.Node, kind yaml.Kind, path string) bool {
	if n.Kind == kind {
		return true
	}
	want := map[yaml.Kind]string{yaml.MappingNode: "a mapping", yaml.SequenceNode: "a list", yaml.ScalarNode: "a single value"}[kind]
	t.addf(n.Line, path, "expected %s, got %s", want, describe(n))
	return false
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	default:
		return strconv.Quote(n.Value)
	}
}

func (t *tree) checkScalar(n *yaml.Node, typ reflect.Type, path string) {
	if typ == durationType {
		t.checkDuration(n, path)
		return
	}
	err := n.Decode(reflect.New(typ).Interface())
	if err == nil {
		return
	}
	switch typ.Kind() {
	case reflect.Bool:
		t.addf(n.Line, path, "cannot parse %q as true or false", n.Value)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		t.addf(n.Line, path, "cannot parse %q as an integer", n.Value)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		t.addf(n.Line, path, "cannot parse %q as a non-negative integer", n.Value)
	case reflect.Float32, reflect.Float64:
		t.addf(n.Line, path, "cannot parse %q as a number", n.Value)
	default:
		t.addYAML(err, n.Line, path)
	}
}

// checkDuration accepts what time.ParseDuration accepts ("250ms", "1.5s",
// "1h30m") and a bare 0. yaml.v3 refuses any other bare number for a
// time.Duration; say why instead of "cannot unmarshal !!int".
func (t *tree) checkDuration(n *yaml.Node, path string) {
	switch n.ShortTag() {
	case strTag:
		if _, err := time.ParseDuration(n.Value); err != nil {
			t.addf(n.Line, path, "cannot parse %q as a duration (a number with a unit: ns, us, ms, s, m, h; e.g. 250ms, 1.5s)", n.Value)
		}
	case intTag, floatTag:
		if f, err := strconv.ParseFloat(strings.ReplaceAll(n.Value, "_", ""), 64); err == nil && f == 0 {
			n.Value, n.Tag, n.Style = "0s", strTag, 0
			return
		}
		t.addf(n.Line, path, "cannot parse %s as a duration: a unit is required (e.g. %sms or %ss)", n.Value, n.Value, n.Value)
	default:
		t.addf(n.Line, path, "cannot parse %q as a duration", n.Value)
	}
}

// fields is what yaml.v3 accepts as keys of a struct.
type fields struct {
	byName    map[string]reflect.Type
	names     []string     // in declaration order
	inlineMap reflect.Type // value type of an ",inline" map, or nil
}

// fieldsOf follows yaml.v3's rules: the yaml tag names the key (default: the
// lower-cased field name), "-" skips a field, ",inline" merges a struct's
// keys or collects unknown keys into a map.
func fieldsOf(typ reflect.Type) fields {
	fs := fields{byName: map[string]reflect.Type{}}
	var walk func(typ reflect.Type)
	walk = func(typ reflect.Type) {
		for i := range typ.NumField() {
			f := typ.Field(i)
			if f.PkgPath != "" && !f.Anonymous {
				continue
			}
			tag := f.Tag.Get("yaml")
			if tag == "" && !strings.Contains(string(f.Tag), ":") {
				tag = string(f.Tag)
			}
			if tag == "-" {
				continue
			}
			name, opts, _ := strings.Cut(tag, ",")
			if slices.Contains(strings.Split(opts, ","), "inline") {
				ft := f.Type
				for ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				switch ft.Kind() {
				case reflect.Map:
					fs.inlineMap = ft.Elem()
				case reflect.Struct:
					walk(ft)
				}
				continue
			}
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			if _, dup := fs.byName[name]; !dup {
				fs.names = append(fs.names, name)
			}
			fs.byName[name] = f.Type
		}
	}
	walk(typ)
	return fs
}
