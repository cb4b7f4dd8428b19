package proxy

import (
	"archive/tar"
	"bufio"
	"compress/bzip2"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// maxBulk bounds the names of one bulk delete and the containers of one
// archive extraction.
const maxBulk = 10000

// bulkDelete deletes the objects and containers a POST ?bulk-delete
// lists, one URL-encoded /container[/object] a line, each as the caller
// may, and answers with what happened to them.
func (p *Proxy) bulkDelete(w http.ResponseWriter, r *http.Request, t target, who caller) {
	var names []string
	sc := bufio.NewScanner(io.LimitReader(r.Body, maxBulk*(maxBulkLine+1)))
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			names = append(names, unescape(line))
		}
	}
	if sc.Err() != nil || len(names) > maxBulk {
		swiftError(w, r, http.StatusRequestEntityTooLarge, fmt.Sprintf("at most %d names a bulk delete", maxBulk))
		return
	}
	deleted, missing := 0, 0
	var failed [][2]string
	for _, name := range names {
		c, o, _ := strings.Cut(strings.TrimPrefix(name, "/"), "/")
		one := target{account: t.account, container: c, object: o}
		del, _ := http.NewRequestWithContext(r.Context(), http.MethodDelete, "/", nil)
		var status int
		switch {
		case c == "":
			status = http.StatusBadRequest
		case !p.may(del, http.MethodDelete, one, who):
			status = http.StatusForbidden
		case o == "":
			status = p.writeContainer(del, one, nil)
		default:
			status = p.writeObject(r.Context(), one, http.MethodDelete, http.Header{})
		}
		switch {
		case status/100 == 2:
			deleted++
		case status == http.StatusNotFound:
			missing++
		default:
			failed = append(failed, [2]string{name, strconv.Itoa(status) + " " + http.StatusText(status)})
		}
	}
	status := http.StatusOK
	if len(failed) > 0 {
		status = http.StatusBadRequest
	}
	writeBulkResult(w, r, deleted, missing, status, failed)
}

// maxBulkLine is the longest line of a bulk delete: a container's and an
// object's names, escaped (which may triple them).
const maxBulkLine = 3 * (256 + 1024 + 2)

// extractArchive stores the files of a tar archive (PUT
// ?extract-archive=tar, tar.gz or tar.bz2) as objects: under the
// container of the request, or, for a request of the account, in the
// container each path starts with (made if missing).
func (p *Proxy) extractArchive(w http.ResponseWriter, r *http.Request, t target, who caller) {
	var in io.Reader = r.Body
	switch kind := r.URL.Query().Get("extract-archive"); kind {
	case "tar":
	case "tar.gz", "tgz":
		gz, err := gzip.NewReader(r.Body)
		if err != nil {
			swiftError(w, r, http.StatusBadRequest, "Invalid Tar File: not gzipped")
			return
		}
		in = gz
	case "tar.bz2", "tbz2":
		in = bzip2.NewReader(r.Body)
	default:
		swiftError(w, r, http.StatusBadRequest, "Unsupported archive format: use tar, tar.gz or tar.bz2")
		return
	}
	created := 0
	var failed [][2]string
	made := map[string]bool{}
	tr := tar.NewReader(in)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			swiftError(w, r, http.StatusBadRequest, "Invalid Tar File: "+err.Error())
			return
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		name := strings.TrimPrefix(strings.TrimPrefix(hdr.Name, "./"), "/")
		one := target{account: t.account, container: t.container, object: name}
		if t.container == "" {
			one.container, one.object, _ = strings.Cut(name, "/")
		}
		status := p.extractOne(r, one, who, hdr.Size, tr, t.container == "", made)
		if status/100 == 2 {
			created++
		} else {
			failed = append(failed, [2]string{"/" + one.container + "/" + one.object, strconv.Itoa(status) + " " + http.StatusText(status)})
		}
	}
	status := http.StatusCreated
	if len(failed) > 0 {
		status = http.StatusBadRequest
	}
	writeExtractResult(w, r, created, status, failed)
}

// extractOne stores one file of an archive as the object t, making its
// container first if the archive went to the account (toAccount).
func (p *Proxy) extractOne(r *http.Request, t target, who caller, size int64, body io.Reader, toAccount bool, made map[string]bool) int {
	if t.container == "" || t.object == "" || len(t.object) > 1024 || len(t.container) > 256 {
		return http.StatusBadRequest
	}
	put, _ := http.NewRequestWithContext(r.Context(), http.MethodPut, "/", nil)
	if !p.may(put, http.MethodPut, t, who) {
		return http.StatusForbidden
	}
	if toAccount && !made[t.container] {
		if len(made) == maxBulk {
			return http.StatusBadRequest
		}
		if status := p.ensureAccount(r.Context(), t); status/100 != 2 {
			return status
		}
		if status := p.writeContainer(put, target{account: t.account, container: t.container}, nil); status/100 != 2 {
			return status
		}
		made[t.container] = true
	}
	rec := &statusRecorder{header: http.Header{}}
	p.putObject(rec, put, t, body, size, nil, "")
	return rec.status
}

// statusRecorder keeps the status of an answer made inside another.
type statusRecorder struct {
	header http.Header
	status int
}

func (s *statusRecorder) Header() http.Header         { return s.header }
func (s *statusRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (s *statusRecorder) WriteHeader(status int)      { s.status = status }

// writeBulkResult answers a bulk delete as Swift's bulk middleware does.
func writeBulkResult(w http.ResponseWriter, r *http.Request, deleted, missing, status int, failed [][2]string) {
	writeFields(w, r, []field{{"Number Deleted", deleted}, {"Number Not Found", missing}, {"Response Body", ""},
		{"Response Status", fmt.Sprintf("%d %s", status, http.StatusText(status))}, {"Errors", errorList(failed)}})
}

// writeExtractResult answers an archive extraction as Swift's bulk
// middleware does.
func writeExtractResult(w http.ResponseWriter, r *http.Request, created, status int, failed [][2]string) {
	writeFields(w, r, []field{{"Number Files Created", created}, {"Response Body", ""},
		{"Response Status", fmt.Sprintf("%d %s", status, http.StatusText(status))}, {"Errors", errorList(failed)}})
}

// errorList is the errors of a bulk operation, each a name and a status:
// an empty list, not null, when there are none.
func errorList(failed [][2]string) [][2]string {
	if failed == nil {
		return [][2]string{}
	}
	return failed
}

// field is one field of a bulk operation's answer.
type field struct {
	name  string
	value any
}

// writeFields answers a bulk operation with its fields, in JSON or as
// lines of text as the client accepts, with status 200 whatever happened
// (the Response Status field says), as Swift's bulk middleware does.
func writeFields(w http.ResponseWriter, r *http.Request, fields []field) {
	var body []byte
	if strings.Contains(r.Header.Get("Accept"), "application/json") {
		m := map[string]any{}
		for _, f := range fields {
			m[f.name] = f.value
		}
		body, _ = json.Marshal(m)
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
	} else {
		var b strings.Builder
		for _, f := range fields {
			fmt.Fprintf(&b, "%s: %v\n", f.name, f.value)
		}
		body = []byte(b.String())
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}
