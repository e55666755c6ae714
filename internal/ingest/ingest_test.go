package ingest

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type fakeConsumer struct {
	got [][]byte
	err error
}

func (f *fakeConsumer) ConsumeProto(b []byte) (int, error) {
	if f.err != nil {
		return 0, f.err
	}
	f.got = append(f.got, append([]byte(nil), b...))
	return 1, nil
}

func (f *fakeConsumer) ConsumeTraces(ptrace.Traces) (int, error) { return 0, f.err }

func TestShutdownWithoutStartAndTwice(t *testing.T) {
	r, err := New(DefaultConfig(), &fakeConsumer{}, nil, nil)
	require.NoError(t, err)
	require.NoError(t, r.Shutdown(context.Background()))
	require.NoError(t, r.Shutdown(context.Background()))
}

func TestConfigValidation(t *testing.T) {
	_, err := New(Config{MaxRequestBytes: 10}, &fakeConsumer{}, nil, nil)
	require.Error(t, err)
	_, err = New(DefaultConfig(), nil, nil, nil)
	require.Error(t, err)
}

func TestHTTPPassesBytesAndMapsConsumerErrors(t *testing.T) {
	fc := &fakeConsumer{}
	r, err := New(Config{HTTPAddress: "127.0.0.1:0", MaxRequestBytes: 1 << 20}, fc, nil, nil)
	require.NoError(t, err)
	require.NoError(t, r.Start())
	defer func() { require.NoError(t, r.Shutdown(context.Background())) }()
	url := "http://" + r.HTTPAddr().String() + "/v1/traces"
	resp, err := http.Post(url, "application/x-protobuf; charset=utf-8", bytes.NewReader([]byte{1, 2, 3}))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, [][]byte{{1, 2, 3}}, fc.got)
	fc.err = errors.New("boom")
	resp, err = http.Post(url, "application/x-protobuf", bytes.NewReader([]byte{1}))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Equal(t, "application/x-protobuf", resp.Header.Get("Content-Type"))
}
