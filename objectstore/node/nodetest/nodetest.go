// Package nodetest helps test the storage nodes' servers: it sends
// requests of the backend protocol and keeps what they got.
package nodetest

import (
	"io"
	"net/http"
	"testing"
)

// Reply is what a request got.
type Reply struct {
	Status int
	Header http.Header
	Body   string
}

// Do sends a request with body (nil for none) and headers given as name,
// value pairs, and fails tb if it cannot.
func Do(tb testing.TB, method, url string, body io.Reader, headers ...string) Reply {
	tb.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		tb.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return Reply{resp.StatusCode, resp.Header, string(b)}
}
