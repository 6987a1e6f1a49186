-- Agents find customers by name: the name folded as search folds text (Arabic letter forms as
-- Persian, no short vowels or joiners, ASCII digits, lower case), written with the name. Names
-- set before this column existed are folded by the hub in the background.
ALTER TABLE users ADD COLUMN search_name TEXT;
