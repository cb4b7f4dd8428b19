package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/trustack/trustack"
)

// Remote console tokens (package compute).

func (db *DB) CreateConsoleToken(ctx context.Context, t *trustack.ConsoleToken) error {
	_, err := db.write.ExecContext(ctx, `INSERT INTO console_tokens
		(token_hash, server_id, host, protocol, console_type, address, secret, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		t.TokenHash, t.ServerID, t.Host, t.Protocol, t.Type, t.Address, t.Secret, t.ExpiresAt.UnixMicro())
	return conflict("console token", translate(err))
}

const consoleTokenColumns = `token_hash, server_id, host, protocol, console_type, address, secret, expires_at`

func scanConsoleToken(row *sql.Row) (*trustack.ConsoleToken, error) {
	var t trustack.ConsoleToken
	var expires int64
	err := row.Scan(&t.TokenHash, &t.ServerID, &t.Host, &t.Protocol, &t.Type, &t.Address, &t.Secret, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, trustack.Errorf(trustack.ENOTFOUND, "The token is invalid or has expired.")
	}
	if err != nil {
		return nil, err
	}
	t.ExpiresAt = time.UnixMicro(expires).UTC()
	return &t, nil
}

func (db *DB) ConsoleToken(ctx context.Context, tokenHash string, at time.Time) (*trustack.ConsoleToken, error) {
	return scanConsoleToken(db.read.QueryRowContext(ctx, `SELECT `+consoleTokenColumns+`
		FROM console_tokens WHERE token_hash = $1 AND expires_at > $2`, tokenHash, at.UnixMicro()))
}

func (db *DB) TakeConsoleToken(ctx context.Context, tokenHash string, at time.Time) (*trustack.ConsoleToken, error) {
	return scanConsoleToken(db.write.QueryRowContext(ctx, `DELETE FROM console_tokens
		WHERE token_hash = $1 AND expires_at > $2 RETURNING `+consoleTokenColumns, tokenHash, at.UnixMicro()))
}

func (db *DB) PurgeConsoleTokens(ctx context.Context, before time.Time) (int64, error) {
	res, err := db.write.ExecContext(ctx, `DELETE FROM console_tokens WHERE expires_at <= $1`, before.UnixMicro())
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
