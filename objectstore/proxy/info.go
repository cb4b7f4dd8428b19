package proxy

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/trustack/trustack/objectstore"
)

// cachedInfo is what the proxy learnt of an account or a container: a
// node's answer to HEAD, and when.
type cachedInfo struct {
	rep reply
	at  int64 // Unix nanoseconds
}

// infoOf returns a node's answer to HEAD of t (an account or a
// container), reused for InfoTTL: writes check that the container is
// there and read its ACLs and quotas without a round trip each.
func (p *Proxy) infoOf(ctx context.Context, t target) reply {
	key := t.path()
	now := p.opts.Now().UnixNano()
	p.infoMu.Lock()
	c, ok := p.infos[key]
	p.infoMu.Unlock()
	if ok && now-c.at < p.opts.InfoTTL.Nanoseconds() {
		return c.rep
	}
	r, part := p.ringOf(t)
	rep := p.readFirst(ctx, r, part, http.MethodHead, key, nil)
	if rep.status/100 == 2 || rep.status == http.StatusNotFound {
		p.infoMu.Lock()
		if len(p.infos) > 100_000 {
			clear(p.infos)
		}
		p.infos[key] = cachedInfo{rep: rep, at: now}
		p.infoMu.Unlock()
	}
	return rep
}

// forgetInfo drops what the proxy learnt of t, which it just changed.
func (p *Proxy) forgetInfo(t target) {
	p.infoMu.Lock()
	delete(p.infos, t.path())
	p.infoMu.Unlock()
}

// info answers GET /info: the cluster's capabilities and limits, as
// clients read them before choosing how to upload.
func (p *Proxy) info(w http.ResponseWriter, r *http.Request) {
	if !readOnly(r.Method) {
		w.Header().Set("Allow", "GET, HEAD")
		swiftError(w, r, http.StatusMethodNotAllowed, "The method is not allowed for this resource.")
		return
	}
	body, _ := json.Marshal(map[string]any{
		"swift": map[string]any{
			"version":                   "2.30.0",
			"max_file_size":             objectstore.MaxFileSize,
			"max_meta_name_length":      objectstore.MaxMetaNameLength,
			"max_meta_value_length":     objectstore.MaxMetaValueLength,
			"max_meta_count":            objectstore.MaxMetaCount,
			"max_meta_overall_size":     objectstore.MaxMetaOverallSize,
			"max_header_size":           objectstore.MaxHeaderSize,
			"max_object_name_length":    objectstore.MaxObjectNameLength,
			"max_container_name_length": objectstore.MaxContainerNameLength,
			"max_account_name_length":   objectstore.MaxAccountNameLength,
			"container_listing_limit":   objectstore.ContainerListingLimit,
			"account_listing_limit":     objectstore.AccountListingLimit,
			"extra_header_count":        0,
			"valid_api_versions":        []string{"v1", "v1.0"},
			"strict_cors_mode":          true,
			"allow_account_management":  false,
			"account_autocreate":        true,
			"policies":                  []map[string]any{{"name": policy, "default": true}},
		},
		"slo":              map[string]any{"max_manifest_segments": maxSegments, "max_manifest_size": 2 << 20, "min_segment_size": 1},
		"dlo":              map[string]any{"max_segments": maxSegments},
		"tempurl":          map[string]any{"methods": tempURLMethods, "allowed_digests": []string{"sha1", "sha256", "sha512"}},
		"bulk_delete":      map[string]any{"max_deletes_per_request": maxBulk, "max_failed_deletes": maxBulk},
		"bulk_upload":      map[string]any{"max_containers_per_extraction": maxBulk, "max_failed_extractions": maxBulk},
		"container_quotas": map[string]any{},
		"account_quotas":   map[string]any{},
	})
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		w.Write(body)
	}
}
