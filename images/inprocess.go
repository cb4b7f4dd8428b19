package images

import (
	"fmt"
	"io"
	"net/http"
	"sync"
)

// serveInProcess has h serve req in a goroutine of its own and returns
// the response once h has written its header; the body streams as h
// writes it, and ends when h returns. A handler that panics (the object
// store's proxy breaks off a read it cannot finish with
// http.ErrAbortHandler, as net/http's server would cut the connection)
// makes the body's read fail rather than end. Closing the body makes h's
// further writes fail.
func serveInProcess(h http.Handler, req *http.Request) *http.Response {
	pr, pw := io.Pipe()
	w := &pipeResponse{header: http.Header{}, body: pw, headerDone: make(chan struct{})}
	go func() {
		defer func() {
			if p := recover(); p != nil {
				w.WriteHeader(http.StatusInternalServerError) // if it had not answered yet
				pw.CloseWithError(fmt.Errorf("the object store broke off its answer: %v", p))
				return
			}
			w.WriteHeader(http.StatusOK) // if it had not answered: as net/http's server
			pw.Close()
		}()
		h.ServeHTTP(w, req)
	}()
	<-w.headerDone
	return &http.Response{
		Status:     fmt.Sprintf("%d %s", w.status, http.StatusText(w.status)),
		StatusCode: w.status, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: w.sent, Body: pr, ContentLength: -1, Request: req,
	}
}

// pipeResponse is an http.ResponseWriter whose body goes to a pipe.
type pipeResponse struct {
	header     http.Header
	body       *io.PipeWriter
	once       sync.Once
	headerDone chan struct{} // closed once status and sent are set
	status     int
	sent       http.Header // the header as it was written
}

func (w *pipeResponse) Header() http.Header { return w.header }

func (w *pipeResponse) WriteHeader(status int) {
	w.once.Do(func() {
		w.status, w.sent = status, w.header.Clone()
		close(w.headerDone)
	})
}

func (w *pipeResponse) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.body.Write(p)
}
