package loadgen

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/spanwatch/spanwatch/internal/field"
)

// Scenario is the YAML scenario file.
type Scenario struct {
	// Rate is the number of requests (traces) per second over the entry
	// operations.
	Rate float64 `yaml:"rate"`
	// Services are the services of the system.
	Services []Service `yaml:"services"`
	// Changes are injected at a time after the start.
	Changes []Change `yaml:"changes"`
}

// Service is one service with its versions and operations.
type Service struct {
	Name      string `yaml:"name"`
	Namespace string `yaml:"namespace"`
	// Instances per version (service.instance.id); default 1.
	Instances int `yaml:"instances"`
	// Versions with their shares of the service's traffic; default one
	// version "v1".
	Versions   []Version   `yaml:"versions"`
	Operations []Operation `yaml:"operations"`
}

// Version is a service.version with its share of traffic.
type Version struct {
	Name string `yaml:"name"`
	// Share of the service's traffic while the version serves; shares of
	// the serving versions are normalised. Default 1.
	Share float64 `yaml:"share"`
	// Start is when the version starts serving (e.g. 60s for a canary).
	Start time.Duration `yaml:"start"`
	// Stop, when set, is when the version stops serving (a rolling update
	// replaces it); 0 serves to the end.
	Stop time.Duration `yaml:"stop"`
	// Ramp spreads the start and the stop over this long: the share grows
	// linearly from 0 after Start (a Start after 0) and falls linearly to 0 before Stop, as a
	// rolling update moves traffic pod by pod.
	Ramp time.Duration `yaml:"ramp"`
}

// weight is the version's share at elapsed.
func (v *Version) weight(elapsed time.Duration) float64 {
	if elapsed < v.Start || (v.Stop > 0 && elapsed >= v.Stop) {
		return 0
	}
	w := v.Share
	if v.Ramp > 0 && v.Start > 0 { // serving from the beginning: no ramp up
		w *= min(1, float64(elapsed-v.Start)/float64(v.Ramp))
	}
	if v.Ramp > 0 && v.Stop > 0 {
		w = min(w, v.Share*float64(v.Stop-elapsed)/float64(v.Ramp))
	}
	return w
}

// Operation is a span name a service serves.
type Operation struct {
	Name string `yaml:"name"`
	// Kind: server (default), consumer or internal.
	Kind string `yaml:"kind"`
	// Share of the scenario's requests that enter the system here; 0 for
	// operations that are only called by others.
	Share float64 `yaml:"share"`
	// Latency is the operation's own time, without its calls.
	Latency Latency `yaml:"latency"`
	// ErrorRate is the probability that the operation fails by itself.
	ErrorRate float64 `yaml:"error_rate"`
	// Attributes are added to the span.
	Attributes map[string]string `yaml:"attributes"`
	// Calls are made in order, each as a client span.
	Calls []Call `yaml:"calls"`
}

// Latency is a distribution of durations: lognormal with a median and σ,
// or fixed.
type Latency struct {
	Median time.Duration `yaml:"median"`
	Sigma  float64       `yaml:"sigma"`
	Fixed  time.Duration `yaml:"fixed"`
}

// Call is a downstream call: to another service's operation, or to a
// database (db.system) with a span name and a latency of its own.
type Call struct {
	Service   string `yaml:"service"`
	Operation string `yaml:"operation"`
	// DB is the db.system of a database call (postgresql, redis, …).
	DB string `yaml:"db"`
	// Name is the client span's name (database calls; service calls
	// default to the operation's name).
	Name      string  `yaml:"name"`
	Latency   Latency `yaml:"latency"`
	ErrorRate float64 `yaml:"error_rate"`
}

// Change is injected from At on: it multiplies latencies or sets an error
// rate of one service (and optionally one version, operation and call).
type Change struct {
	At        time.Duration `yaml:"at"`
	Service   string        `yaml:"service"`
	Version   string        `yaml:"version"`
	Operation string        `yaml:"operation"`
	// Call names a database call (its span name) or called operation of
	// Operation; empty means the operation's own time.
	Call          string   `yaml:"call"`
	LatencyFactor float64  `yaml:"latency_factor"`
	ErrorRate     *float64 `yaml:"error_rate"`
}

//go:embed shop.yaml
var shopYAML []byte

// Shop returns the built-in scenario of `spanwatch demo`: frontend → cart,
// frontend → checkout → payments with database calls; from 60s a canary
// checkout v2 serves 20 % and its POST /charge gets slower through its
// database call.
func Shop() *Scenario {
	sc, err := Parse(bytes.NewReader(shopYAML))
	if err != nil {
		panic(fmt.Sprintf("built-in scenario: %v", err)) // a test guards it
	}
	return sc
}

// ShopYAML is the text of the built-in scenario.
func ShopYAML() []byte { return bytes.Clone(shopYAML) }

// Load reads and validates a scenario file; errors name the file, the line
// and the key.
func Load(path string) (*Scenario, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	sc, err := Parse(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return sc, nil
}

// Parse decodes a scenario strictly (unknown keys are errors naming the
// line) and validates it.
func Parse(r io.Reader) (*Scenario, error) {
	dec := yaml.NewDecoder(r)
	dec.KnownFields(true)
	var sc Scenario
	if err := dec.Decode(&sc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty scenario")
		}
		return nil, err
	}
	sc.applyDefaults()
	if err := sc.Validate(); err != nil {
		return nil, err
	}
	return &sc, nil
}

func (sc *Scenario) applyDefaults() {
	if sc.Rate == 0 {
		sc.Rate = 10
	}
	for i := range sc.Services {
		s := &sc.Services[i]
		if s.Instances == 0 {
			s.Instances = 1
		}
		if len(s.Versions) == 0 {
			s.Versions = []Version{{Name: "v1"}}
		}
		for j := range s.Versions {
			if s.Versions[j].Share == 0 {
				s.Versions[j].Share = 1
			}
		}
		for j := range s.Operations {
			if s.Operations[j].Kind == "" {
				s.Operations[j].Kind = "server"
			}
		}
	}
}

// Validate checks the scenario; errors name the key path.
func (sc *Scenario) Validate() error {
	if sc.Rate <= 0 {
		return keyErr("rate", "must be positive, got %g", sc.Rate)
	}
	if len(sc.Services) == 0 {
		return keyErr("services", "at least one service is required")
	}
	ops := map[string]*Operation{}
	entries := 0.0
	for i := range sc.Services {
		s := &sc.Services[i]
		p := fmt.Sprintf("services[%d]", i)
		if s.Name == "" {
			return keyErr(p+".name", "is required")
		}
		if s.Instances < 1 {
			return keyErr(p+".instances", "must be at least 1, got %d", s.Instances)
		}
		for j, v := range s.Versions {
			vp := fmt.Sprintf("%s.versions[%d]", p, j)
			switch {
			case v.Name == "":
				return keyErr(vp+".name", "is required")
			case v.Share < 0:
				return keyErr(vp+".share", "must not be negative, got %g", v.Share)
			case v.Start < 0:
				return keyErr(vp+".start", "must not be negative, got %s", v.Start)
			case v.Stop < 0 || (v.Stop > 0 && v.Stop <= v.Start):
				return keyErr(vp+".stop", "must be after start (%s), got %s", v.Start, v.Stop)
			case v.Ramp < 0:
				return keyErr(vp+".ramp", "must not be negative, got %s", v.Ramp)
			}
		}
		for j := range s.Operations {
			o := &s.Operations[j]
			op := fmt.Sprintf("%s.operations[%d]", p, j)
			if o.Name == "" {
				return keyErr(op+".name", "is required")
			}
			key := s.Name + "\x00" + o.Name
			if _, dup := ops[key]; dup {
				return keyErr(op+".name", "operation %q of %s is defined twice", o.Name, s.Name)
			}
			ops[key] = o
			switch o.Kind {
			case "server", "consumer", "internal":
			default:
				return keyErr(op+".kind", "must be server, consumer or internal, got %q", o.Kind)
			}
			if o.Share < 0 {
				return keyErr(op+".share", "must not be negative, got %g", o.Share)
			}
			entries += o.Share
			if err := o.Latency.validate(op + ".latency"); err != nil {
				return err
			}
			if o.ErrorRate < 0 || o.ErrorRate > 1 {
				return keyErr(op+".error_rate", "must be in [0, 1], got %g", o.ErrorRate)
			}
			for k, c := range o.Calls {
				cp := fmt.Sprintf("%s.calls[%d]", op, k)
				switch {
				case c.DB != "" && c.Service != "":
					return keyErr(cp, "a call goes to a service or a db, not both")
				case c.DB != "":
					if c.Name == "" {
						return keyErr(cp+".name", "a db call needs a span name (e.g. SELECT orders)")
					}
					if err := c.Latency.validate(cp + ".latency"); err != nil {
						return err
					}
				case c.Service != "":
					if c.Operation == "" {
						return keyErr(cp+".operation", "is required for a service call")
					}
				default:
					return keyErr(cp, "needs service and operation, or db and name")
				}
				if c.ErrorRate < 0 || c.ErrorRate > 1 {
					return keyErr(cp+".error_rate", "must be in [0, 1], got %g", c.ErrorRate)
				}
			}
		}
	}
	if entries == 0 {
		return keyErr("services", "no entry operation: give at least one operation a share")
	}
	// Calls must reach defined operations, without cycles.
	for i, s := range sc.Services {
		for j, o := range s.Operations {
			for k, c := range o.Calls {
				if c.Service != "" && ops[c.Service+"\x00"+c.Operation] == nil {
					return keyErr(fmt.Sprintf("services[%d].operations[%d].calls[%d]", i, j, k),
						"calls %s %q, which no service defines", c.Service, c.Operation)
				}
			}
		}
	}
	for key := range ops {
		if err := sc.acyclic(key, map[string]bool{}, ops); err != nil {
			return err
		}
	}
	for i, c := range sc.Changes {
		p := fmt.Sprintf("changes[%d]", i)
		switch {
		case c.At < 0:
			return keyErr(p+".at", "must not be negative, got %s", c.At)
		case c.Service == "":
			return keyErr(p+".service", "is required")
		case c.LatencyFactor < 0:
			return keyErr(p+".latency_factor", "must not be negative, got %g", c.LatencyFactor)
		case c.ErrorRate != nil && (*c.ErrorRate < 0 || *c.ErrorRate > 1):
			return keyErr(p+".error_rate", "must be in [0, 1], got %g", *c.ErrorRate)
		case c.LatencyFactor == 0 && c.ErrorRate == nil:
			return keyErr(p, "changes nothing: set latency_factor or error_rate")
		case c.Operation != "" && ops[c.Service+"\x00"+c.Operation] == nil:
			return keyErr(p+".operation", "%s has no operation %q", c.Service, c.Operation)
		}
	}
	return nil
}

func (sc *Scenario) acyclic(key string, path map[string]bool, ops map[string]*Operation) error {
	if path[key] {
		return keyErr("services", "calls form a cycle through %s", strings.ReplaceAll(key, "\x00", " "))
	}
	path[key] = true
	defer delete(path, key)
	for _, c := range ops[key].Calls {
		if c.Service != "" {
			if err := sc.acyclic(c.Service+"\x00"+c.Operation, path, ops); err != nil {
				return err
			}
		}
	}
	return nil
}

func (l Latency) validate(p string) error {
	switch {
	case l.Median < 0 || l.Fixed < 0:
		return keyErr(p, "durations must not be negative")
	case l.Sigma < 0 || l.Sigma > 5:
		return keyErr(p+".sigma", "must be in [0, 5], got %g", l.Sigma)
	case l.Fixed > 0 && (l.Median > 0 || l.Sigma > 0):
		return keyErr(p, "choose fixed, or median and sigma")
	}
	return nil
}

// keyErr is a scenario error at a key path: a *field.Error, which the
// scenario loader turns into the file's line.
func keyErr(key, format string, args ...any) error { return field.Errorf(key, format, args...) }
