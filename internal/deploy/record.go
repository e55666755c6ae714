package deploy

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// RecordFile is the durable record's name under the storage path.
const RecordFile = "deployments.json"

// recordVersion is the record's format version.
const recordVersion = 1

type record struct {
	Version     int                  `json:"version"`
	LastLook    time.Time            `json:"last_look"`
	Groups      []*groupState        `json:"groups"`
	Events      []*Event             `json:"events"`
	Unversioned map[string]time.Time `json:"unversioned"`
}

// Marshal encodes the tracker's state.
func (t *Tracker) Marshal() ([]byte, error) {
	r := record{Version: recordVersion, LastLook: t.lastLook, Events: t.events, Unversioned: t.unversioned}
	for _, g := range t.groups {
		r.Groups = append(r.Groups, g)
	}
	return json.Marshal(&r)
}

// Unmarshal replaces the tracker's state with an encoded one.
func (t *Tracker) Unmarshal(b []byte) error {
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return err
	}
	if r.Version != recordVersion {
		return fmt.Errorf("record format %d, want %d", r.Version, recordVersion)
	}
	t.groups = map[string]*groupState{}
	for _, g := range r.Groups {
		if g.Versions == nil {
			g.Versions = map[string]*versionState{}
		}
		t.groups[g.Group.key()] = g
	}
	t.events = nil
	for _, e := range r.Events {
		t.addEvent(e)
	}
	t.unversioned = r.Unversioned
	if t.unversioned == nil {
		t.unversioned = map[string]time.Time{}
	}
	t.lastLook = r.LastLook
	return nil
}

// Save writes the tracker's state to dir/RecordFile atomically: a
// temporary file, synced, renamed over the old one.
func (t *Tracker) Save(dir string) error {
	b, err := t.Marshal()
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, RecordFile+".tmp*")
	if err != nil {
		return err
	}
	_, werr := f.Write(b)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		_ = os.Remove(f.Name())
		return err
	}
	if err := os.Rename(f.Name(), filepath.Join(dir, RecordFile)); err != nil {
		_ = os.Remove(f.Name())
		return err
	}
	return nil
}

// Load reads dir/RecordFile; a missing file leaves the tracker empty and
// is not an error.
func (t *Tracker) Load(dir string) error {
	b, err := os.ReadFile(filepath.Join(dir, RecordFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := t.Unmarshal(b); err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(dir, RecordFile), err)
	}
	return nil
}
