package openstack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"runtime/debug"
	"time"
)

type requestIDKey struct{}

// RequestID returns the ID of the request ctx belongs to.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

func newRequestID() string {
	var b [16]byte
	rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return fmt.Sprintf("req-%s-%s-%s-%s-%s", h[:8], h[8:12], h[12:16], h[16:20], h[20:])
}

// Middleware gives every request an ID (in the x-openstack-request-id
// response header and in the logs), writes one access-log line per
// request, and turns a panic in a handler into a logged 500 instead of a
// dropped connection.
func Middleware(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := newRequestID()
		w.Header().Set("X-Openstack-Request-Id", id)
		rec := &recorder{ResponseWriter: w}
		r = r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id))
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				log.Error("panic serving request", "request_id", id, "method", r.Method, "path", r.URL.Path, "panic", p, "stack", string(debug.Stack()))
				if rec.status == 0 {
					JSON(rec, http.StatusInternalServerError, map[string]any{"error": map[string]any{
						"code": 500, "title": "Internal Server Error", "message": "An unexpected error prevented the server from fulfilling your request.",
					}})
				}
			}
			log.Info("request", "request_id", id, "remote", r.RemoteAddr, "method", r.Method, "path", loggedURI(r.URL),
				"status", rec.status, "bytes", rec.bytes, "duration_ms", float64(time.Since(start).Microseconds())/1000, "user_id", rec.userID)
		}()
		next.ServeHTTP(rec, r)
	})
}

// recorder remembers what was written, for the access log.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
	userID string
}

func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
	r.ResponseWriter.WriteHeader(status)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

// Flush passes on to the underlying writer, for streamed responses.
func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// secretParams are the query parameters that grant access by themselves
// (a TempURL's or a presigned S3 URL's signature, a console URL's token),
// kept out of logs.
var secretParams = []string{"temp_url_sig", "X-Amz-Signature", "token"}

// loggedURI is u's path and query as the access log shows them: with
// the signatures of secretParams masked.
func loggedURI(u *url.URL) string {
	q := u.Query()
	masked := false
	for _, p := range secretParams {
		if q.Has(p) {
			q.Set(p, "REDACTED")
			masked = true
		}
	}
	if !masked {
		return u.RequestURI()
	}
	return u.EscapedPath() + "?" + q.Encode()
}
