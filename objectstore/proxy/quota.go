package proxy

import (
	"fmt"
	"net/http"
	"strconv"
)

// Quotas: a container's X-Container-Meta-Quota-Bytes and -Quota-Count,
// which its owner sets, and an account's X-Account-Meta-Quota-Bytes,
// which only a reseller admin sets, bound what uploads may add.

// checkQuotas checks that the quota headers of meta that are set are
// numbers. An error is a 400's message.
func checkQuotas(meta http.Header, names ...string) error {
	for _, name := range names {
		if v := meta.Get(name); v != "" {
			if n, err := strconv.ParseInt(v, 10, 64); err != nil || n < 0 {
				return fmt.Errorf("%s must be a number of 0 or more, not %q", name, v)
			}
		}
	}
	return nil
}

// overQuota says why an upload of length bytes (-1: unknown) to t would
// exceed its container's or its account's quota ("" if it would not),
// from the container's headers and the account's.
func (p *Proxy) overQuota(r *http.Request, t target, container http.Header, length int64) string {
	size := max(length, 0)
	exceeds := func(used, quota string, add int64) bool {
		q, err := strconv.ParseInt(quota, 10, 64)
		if err != nil {
			return false // no quota
		}
		u, _ := strconv.ParseInt(used, 10, 64)
		return u+add > q || (length < 0 && add > 0 && u >= q)
	}
	switch {
	case exceeds(container.Get("X-Container-Bytes-Used"), container.Get("X-Container-Meta-Quota-Bytes"), size):
		return "Upload exceeds quota."
	case exceeds(container.Get("X-Container-Object-Count"), container.Get("X-Container-Meta-Quota-Count"), 1):
		return "Upload exceeds quota."
	}
	account := p.infoOf(r.Context(), target{account: t.account}).header
	if exceeds(account.Get("X-Account-Bytes-Used"), account.Get("X-Account-Meta-Quota-Bytes"), size) {
		return "Upload exceeds quota."
	}
	return ""
}
