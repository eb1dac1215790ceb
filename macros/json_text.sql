{#-
    A top-level string field of a JSON object held as text. Compact JSON ("key":"value") is read
    with string functions (parsing JSON costs ~7 us per row); anything else falls back to ->>.
-#}
{% macro json_text_field(json_text, key) -%}
    case
        when strpos({{ json_text }}, '"{{ key }}":"') > 0
            then split_part(split_part({{ json_text }}, '"{{ key }}":"', 2), '"', 1)
        when strpos({{ json_text }}, '"{{ key }}"') > 0
            then ({{ json_text }})::json ->> '{{ key }}'
    end
{%- endmacro %}
