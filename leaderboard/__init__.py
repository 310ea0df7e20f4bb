"""Result rows in; tables, pages and the regression gate out."""
