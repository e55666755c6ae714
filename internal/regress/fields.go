package regress

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"

	"github.com/spanwatch/spanwatch/internal/field"
)

// Field is one number of Thresholds, as the config file, the gate's flags,
// validation and the docs see it.
type Field struct {
	// Key is the path in the config file's gate: section, e.g.
	// "min_ratio.p95".
	Key string
	// Flag is the gate's flag name without dashes, e.g. "min-ratio-p95".
	Flag string
	// Help is the flag's help text.
	Help string
	// Range is the valid range in interval notation, e.g. "[1,inf)".
	Range string
	// Value points into the Thresholds that Fields was called on.
	Value *float64

	lo, hi         float64
	loOpen, hiOpen bool
}

// Fields lists every number of t in declaration order, with pointers into t.
// Two calls on different Thresholds list the same keys in the same order.
func (t *Thresholds) Fields() []Field {
	var out []Field
	walkFields(reflect.ValueOf(t).Elem(), "", reflect.StructTag(""), &out)
	return out
}

func walkFields(v reflect.Value, prefix string, parent reflect.StructTag, out *[]Field) {
	typ := v.Type()
	for i := range typ.NumField() {
		sf := typ.Field(i)
		key := sf.Tag.Get("yaml")
		if prefix != "" {
			key = prefix + "." + key
		}
		fv := v.Field(i)
		if fv.Kind() == reflect.Struct {
			walkFields(fv, key, sf.Tag, out)
			continue
		}
		tag := sf.Tag
		if tag.Get("flag") == "" {
			// A Quantiles field: the parent's tags with the quantile filled in.
			q := sf.Tag.Get("yaml")
			fill := strings.NewReplacer("{q}", q, "{Q}", strings.ToUpper(q))
			tag = reflect.StructTag(fmt.Sprintf(`flag:%q range:%q help:%q`,
				fill.Replace(parent.Get("flag")), parent.Get("range"), fill.Replace(parent.Get("help"))))
		}
		f := Field{Key: key, Flag: tag.Get("flag"), Help: tag.Get("help"), Range: tag.Get("range"), Value: fv.Addr().Interface().(*float64)}
		if err := f.parseRange(); err != nil {
			panic(fmt.Sprintf("regress: Thresholds.%s: %v", sf.Name, err)) // a programming error in the tags
		}
		*out = append(*out, f)
	}
}

// parseRange reads Range ("(0,0.5)", "[1,inf)").
func (f *Field) parseRange() error {
	r := f.Range
	if len(r) < 5 || !strings.ContainsAny(r[:1], "([") || !strings.ContainsAny(r[len(r)-1:], ")]") {
		return fmt.Errorf("range %q: want interval notation such as [1,inf)", r)
	}
	lo, hi, ok := strings.Cut(r[1:len(r)-1], ",")
	if !ok {
		return fmt.Errorf("range %q: want two bounds", r)
	}
	var err error
	if f.lo, err = strconv.ParseFloat(lo, 64); err != nil {
		return fmt.Errorf("range %q: %w", r, err)
	}
	if f.hi, err = strconv.ParseFloat(hi, 64); err != nil {
		return fmt.Errorf("range %q: %w", r, err)
	}
	f.loOpen, f.hiOpen = r[0] == '(', r[len(r)-1] == ')'
	return nil
}

// check reports whether v lies in the field's range.
func (f *Field) check(v float64) error {
	lowOK := v >= f.lo
	if f.loOpen {
		lowOK = v > f.lo
	}
	highOK := v <= f.hi
	if f.hiOpen {
		highOK = v < f.hi
	}
	if math.IsNaN(v) || !lowOK || !highOK {
		return field.Errorf(f.Key, "must be in %s, got %g", f.RangeText(), v)
	}
	return nil
}

// RangeText renders Range for people: "(0, 0.5)", "≥ 1".
func (f *Field) RangeText() string {
	if math.IsInf(f.hi, 1) {
		if f.loOpen {
			return "> " + strconv.FormatFloat(f.lo, 'g', -1, 64)
		}
		return "≥ " + strconv.FormatFloat(f.lo, 'g', -1, 64)
	}
	return strings.Replace(f.Range, ",", ", ", 1)
}

// Validate reports the first number out of its range as a *field.Error
// naming the key (min_ratio.p95) and wrapping ErrInvalidThresholds: levels
// in (0, 0.5), ratios ≥ 1, changes ≥ 0, request minimums ≥ 1 (so that no
// traffic never passes).
func (t Thresholds) Validate() error {
	for _, f := range t.Fields() {
		if err := f.check(*f.Value); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidThresholds, err)
		}
	}
	return nil
}
