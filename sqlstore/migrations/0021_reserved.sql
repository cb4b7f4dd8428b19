-- Reserved: version 21 belongs to a change made alongside the console
-- tokens (0022); merging that change replaces this file.
SELECT 1;
