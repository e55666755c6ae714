// Package config loads spanwatch's YAML configuration file.
//
// It owns the file format: strict decoding (an unknown key is an error that
// names the key and its line), defaults filled before the file is applied,
// ${VAR} environment expansion in values, and the Validate walk over every
// section. Each error it returns names the file, the line and the key path,
// e.g. "config.yaml:14: spanmetrics.histogram.explicit.buckets[3]: ...".
//
// The sections themselves are the components' own Config types; this
// package only decodes and validates them. It must not hold component
// logic, and component packages must not import it.
//
// Adding a section is one field in File (with its yaml tag), its default in
// Default, and its Validate in File.sections.
package config
