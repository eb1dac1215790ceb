{#-
    Values from GA4's BigQuery-shaped event_params text
    ([{"key": .., "value": {"string_value" | "int_value": ..}}]), in two steps a model evaluates
    in separate query levels (see stg_ga4__events):

      ga4_param_rest(params_text, key, kind)   the text after the key in its compact form
                                              ('' when the compact form is absent)
      ga4_param(rest, params_text, key, kind)  the value

    Parsing JSON costs ~7 us per event, a tenth of a second per 100k events per parameter, which
    dominates the build at scale. So compactly serialized params (how the export and the demo
    write them) are read with plain string functions; anything else (whitespace between tokens)
    falls back to a real JSON path query, and an absent key is null without parsing at all.
    Escapes inside compact string values are kept as written. Finding the key once per parameter
    (split_part, a byte search) rather than testing for it first (strpos, which also counts
    characters) halves the cost.
-#}
{% macro _ga4_compact(key, kind) -%}
    {%- set value_key = 'int_value' if kind == 'int' else 'string_value' -%}
    {{- '"key":"' ~ key ~ '","value":{"' ~ value_key ~ '":' ~ ('' if kind == 'int' else '"') -}}
{%- endmacro %}

{% macro ga4_param_rest(params_text, key, kind='string') -%}
    split_part({{ params_text }}, '{{ _ga4_compact(key, kind) }}', 2)
{%- endmacro %}

{% macro ga4_param(rest, params_text, key, kind='string') -%}
    {%- set value_key = 'int_value' if kind == 'int' else 'string_value' -%}
    case
        {%- if kind == 'int' %}
        when {{ rest }} <> ''
            then nullif(trim(both '"' from split_part({{ rest }}, '}', 1)), '')::bigint
        {%- else %}
        when {{ rest }} <> '' then split_part({{ rest }}, '"', 1)
        -- compact key with a non-string value
        when strpos({{ params_text }}, '{{ _ga4_compact(key, kind)[:-1] }}') > 0 then ''
        {%- endif %}
        when strpos({{ params_text }}, '"{{ key }}"') > 0
            then (jsonb_path_query_first(
                {{ params_text }}::jsonb, '$[*] ? (@.key == "{{ key }}").value.{{ value_key }}'
            ) #>> '{}'){% if kind == 'int' %}::bigint{% endif %}
    end
{%- endmacro %}
