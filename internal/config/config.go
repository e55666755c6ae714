package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/spanwatch/spanwatch/internal/deploy"
	"github.com/spanwatch/spanwatch/internal/export"
	"github.com/spanwatch/spanwatch/internal/field"
	"github.com/spanwatch/spanwatch/internal/gate"
	"github.com/spanwatch/spanwatch/internal/ingest"
	"github.com/spanwatch/spanwatch/internal/rules"
	"github.com/spanwatch/spanwatch/internal/spanmetrics"
)

// File is the whole config file. Each field is one top-level section and is
// the owning component's own Config type.
type File struct {
	// SpanMetrics configures span → series aggregation. Its keys mirror the
	// OpenTelemetry Collector spanmetrics connector.
	SpanMetrics spanmetrics.Config `yaml:"spanmetrics"`
	// Exposition configures how series are named wherever they leave
	// spanwatch, like the Collector's Prometheus exporter.
	Exposition spanmetrics.NamingConfig `yaml:"exposition"`
	// RemoteWrite lists remote-write destinations for every flush, with
	// their authentication, headers and external labels.
	RemoteWrite []export.RemoteWriteConfig `yaml:"remote_write"`
	// Gate holds the defaults of `spanwatch gate` (thresholds, waiting).
	Gate gate.Config `yaml:"gate"`
	// Rules configures rule evaluation and the built-in alert pack.
	Rules rules.Config `yaml:"rules"`
	// Deploy configures automatic deployment detection and verdicts.
	Deploy deploy.Config `yaml:"deploy"`
	// OTLP sets TLS and authentication of the OTLP receivers; their
	// addresses and size limit are flags.
	OTLP ingest.ReceiversConfig `yaml:"otlp"`
}

// section is one top-level key and the Validate of the value it decodes into.
type section struct {
	key      string
	validate func() error
}

// sections lists the Validate of every section; a new section adds one line.
func (f *File) sections() []section {
	return []section{
		{"spanmetrics", f.SpanMetrics.Validate},
		{"exposition", f.Exposition.Validate},
		{"remote_write", f.validateRemoteWrite},
		{"gate", f.Gate.Validate},
		{"rules", f.Rules.Validate},
		{"deploy", f.Deploy.Validate},
		{"otlp", f.OTLP.Validate},
	}
}

func (f *File) validateRemoteWrite() error {
	names := map[string]int{}
	for i := range f.RemoteWrite {
		rw := &f.RemoteWrite[i]
		if err := rw.Validate(); err != nil {
			return &field.Error{Path: fmt.Sprintf("[%d]", i), Err: err}
		}
		if j, dup := names[rw.RemoteName()]; dup {
			return &field.Error{Path: fmt.Sprintf("[%d].name", i),
				Err: fmt.Errorf("remote write name %q is already used by remote_write[%d]; set name to tell them apart", rw.RemoteName(), j)}
		}
		names[rw.RemoteName()] = i
	}
	return nil
}

// Default returns the configuration used when the file sets nothing.
func Default() *File {
	return &File{
		SpanMetrics: spanmetrics.DefaultConfig(),
		Exposition:  spanmetrics.DefaultNamingConfig(),
		Gate:        gate.DefaultConfig(),
		Rules:       rules.DefaultConfig(),
		Deploy:      deploy.DefaultConfig(),
	}
}

// Load reads and parses the config file at path. Relative file paths in it
// (TLS certificates, token and password files) are resolved against the
// directory of path, as Prometheus does.
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	f, err := Parse(data, path)
	if err != nil {
		return nil, err
	}
	f.OTLP.SetDirectory(filepath.Dir(path))
	return f, nil
}

// Parse decodes a config file over Default and validates it. filename is used
// only in error messages.
//
// Decoding is strict: an unknown key, a duplicate key or a value of the wrong
// type is an error. Environment references in values (${VAR}, $VAR,
// ${env:VAR}, ${VAR:-default}; $$ for a literal $) are expanded first; an
// unset variable expands to nothing, which leaves the default in place for a
// plain (unquoted) value. An empty file, or one holding only comments, gives
// Default().
//
// On error Parse returns every problem it found, each an *Error naming the
// file, the line and the key path, joined with errors.Join.
func Parse(data []byte, filename string) (*File, error) {
	t := &tree{file: filename, lines: map[string]int{}}
	root, err := t.parse(data)
	if err != nil {
		return nil, err
	}
	f := Default()
	if root == nil {
		return f, nil
	}
	if root.Kind != yaml.MappingNode {
		names := fieldsOf(reflect.TypeFor[File]()).names
		return nil, &Error{File: filename, Line: root.Line,
			Err: fmt.Errorf("expected a mapping of sections (%s), got %s", strings.Join(names, ", "), describe(root))}
	}
	t.index(root, "", os.LookupEnv)
	if len(t.errs) > 0 {
		return nil, t.err()
	}
	t.check(root, reflect.TypeFor[File](), "")
	if len(t.errs) > 0 {
		return nil, t.err()
	}
	if err := root.Decode(f); err != nil {
		// check should have caught everything yaml.v3 refuses.
		t.addYAML(err, root.Line, "")
		return nil, t.err()
	}
	if err := f.Validate(); err != nil {
		for _, e := range unjoin(err) {
			var ce *Error
			if errors.As(e, &ce) {
				ce.File, ce.Line = filename, t.lineOf(ce.Path)
			}
			t.errs = append(t.errs, e)
		}
		return nil, t.err()
	}
	return f, nil
}

// Validate checks every section. It returns one *Error per section that has
// a problem, joined with errors.Join; their Path is set, their File and Line
// are not (Parse fills them in).
func (f *File) Validate() error {
	var errs []error
	for _, s := range f.sections() {
		if err := s.validate(); err != nil {
			errs = append(errs, sectionError(s.key, err))
		}
	}
	return errors.Join(errs...)
}

// sectionError prefixes the section key to the path of a component's
// *field.Error.
func sectionError(key string, err error) *Error {
	var fe *field.Error
	if !errors.As(err, &fe) {
		return &Error{Path: key, Err: err}
	}
	p := key
	switch {
	case fe.Path == "":
	case strings.HasPrefix(fe.Path, "["):
		p += fe.Path
	default:
		p += "." + fe.Path
	}
	return &Error{Path: p, Err: fe.Err}
}

// unjoin returns the errors joined in err (or err itself).
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
