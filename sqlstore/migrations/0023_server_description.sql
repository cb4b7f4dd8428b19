-- A server's description (Nova's microversion 2.19): NULL for none, which
-- Nova tells apart from an empty one.
ALTER TABLE servers ADD COLUMN description TEXT;
