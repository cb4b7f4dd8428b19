-- Reserved: version 22 belongs to a change made alongside the server
-- descriptions (0023); merging that change replaces this file.
SELECT 1;
