package spanmetrics

import (
	"encoding/binary"
)

// A series key is the identity of one series, encoded compactly:
//
//	namespace, instance, service, span name, kind, status, dim_0 … dim_n-1
//
// Each field is a uvarint L followed, when L > 0, by L-1 bytes; L = 0 means
// "absent" (excluded, or no value and no default). Kind and status are
// encoded as the uvarint of their uint32 value plus one. The
// first three fields identify the target (job/instance), so a target key is a
// prefix of every key of its series.

type keyField struct {
	v  string
	ok bool
}

type decodedKey struct {
	namespace, instance, service, spanName keyField
	kind, status                           keyField // only ok is used; the values are in kindRaw and statusRaw
	kindRaw, statusRaw                     uint64
	dims                                   []keyField
}

func appendKeyField(dst []byte, v []byte, ok bool) []byte {
	if !ok {
		return append(dst, 0)
	}
	dst = binary.AppendUvarint(dst, uint64(len(v))+1)
	return append(dst, v...)
}

func appendKeyEnum(dst []byte, v int32, ok bool) []byte {
	if !ok {
		return append(dst, 0)
	}
	return binary.AppendUvarint(dst, uint64(uint32(v))+1)
}

func readKeyField(k string) (keyField, string) {
	l, n := binary.Uvarint([]byte(k[:min(len(k), binary.MaxVarintLen64)]))
	if n <= 0 {
		return keyField{}, ""
	}
	k = k[n:]
	if l == 0 {
		return keyField{}, k
	}
	l--
	return keyField{v: k[:l], ok: true}, k[l:]
}

func readKeyEnum(k string) (uint64, bool, string) {
	l, n := binary.Uvarint([]byte(k[:min(len(k), binary.MaxVarintLen64)]))
	if n <= 0 {
		return 0, false, ""
	}
	if l == 0 {
		return 0, false, k[n:]
	}
	return l - 1, true, k[n:]
}

func decodeKey(k string, ndims int) decodedKey {
	var d decodedKey
	d.namespace, k = readKeyField(k)
	d.instance, k = readKeyField(k)
	d.service, k = readKeyField(k)
	d.spanName, k = readKeyField(k)
	d.kindRaw, d.kind.ok, k = readKeyEnum(k)
	d.statusRaw, d.status.ok, k = readKeyEnum(k)
	d.dims = make([]keyField, ndims)
	for i := range d.dims {
		d.dims[i], k = readKeyField(k)
	}
	return d
}

func (d *decodedKey) kindValue() int32   { return int32(uint32(d.kindRaw)) }
func (d *decodedKey) statusValue() int32 { return int32(uint32(d.statusRaw)) }

// job renders the job label as the Prometheus exporter does:
// service.namespace/service.name, or service.name alone.
func (d *decodedKey) job() string {
	if !d.service.ok {
		return ""
	}
	if d.namespace.ok && d.namespace.v != "" {
		return d.namespace.v + "/" + d.service.v
	}
	return d.service.v
}

// targetPrefixLen returns the length of the target part (namespace,
// instance, service) of key k.
func targetPrefixLen(k string) int {
	rest := k
	for range 3 {
		_, rest = readKeyField(rest)
	}
	return len(k) - len(rest)
}
