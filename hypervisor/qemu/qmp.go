package qemu

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/trustack/trustack/internal/qmp"
)

// runState returns QEMU's run state (query-status), such as "running".
func runState(ctx context.Context, m *qmp.Monitor) (string, error) {
	out, err := m.Run(ctx, "query-status", nil)
	if err != nil {
		return "", err
	}
	var st struct {
		Status string `json:"status"`
	}
	if err := json.Unmarshal(out, &st); err != nil {
		return "", fmt.Errorf("QMP query-status: %w", err)
	}
	return st.Status, nil
}
