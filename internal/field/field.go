// Package field holds the validation error that every component's Config
// returns: an error tied to a key path such as
// "histogram.explicit.buckets[3]", which the config loader turns into the
// file's line. It is a leaf: it imports nothing of spanwatch, so a
// component can report a key without importing another component.
package field

import (
	"errors"
	"fmt"
)

// Error is a validation error tied to a key path in the config.
type Error struct {
	Path string
	Err  error
}

func (e *Error) Error() string { return e.Path + ": " + e.Err.Error() }

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error for path with a formatted message; the message
// should not repeat the key, which Error's text already starts with.
func Errorf(path, format string, args ...any) error {
	return &Error{Path: path, Err: fmt.Errorf(format, args...)}
}

// Under puts err below the key prefix: an *Error's path becomes
// prefix.path, any other error becomes an *Error at prefix. Nil stays nil.
func Under(prefix string, err error) error {
	if err == nil {
		return nil
	}
	var fe *Error
	if errors.As(err, &fe) {
		return &Error{Path: prefix + "." + fe.Path, Err: fe.Err}
	}
	return &Error{Path: prefix, Err: err}
}
