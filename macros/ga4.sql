{#-
    A value from GA4's BigQuery-shaped event_params text
    ([{"key": .., "value": {"string_value" | "int_value": ..}}]).

    Parsing JSON costs ~7 us per event, a tenth of a second per 100k events per parameter, which
    dominates the build at scale. So compactly serialized params (how the export and the demo
    write them) are read with plain string functions; anything else (whitespace between tokens)
    falls back to a real JSON path query, and an absent key is null without parsing at all.
    Escapes inside compact string values are kept as written.
-#}
{% macro ga4_param(params_text, key, kind='string') -%}
    {%- set value_key = 'int_value' if kind == 'int' else 'string_value' -%}
    {%- set compact = '"key":"' ~ key ~ '","value":{"' ~ value_key ~ '":' -%}
    {%- set fast -%}
        {%- if kind == 'int' -%}
            nullif(trim(both '"' from split_part(split_part({{ params_text }}, '{{ compact }}', 2), '}', 1)), '')::bigint
        {%- else -%}
            split_part(split_part({{ params_text }}, '{{ compact }}"', 2), '"', 1)
        {%- endif -%}
    {%- endset -%}
    {%- set slow -%}
        (jsonb_path_query_first({{ params_text }}::jsonb, '$[*] ? (@.key == "{{ key }}").value.{{ value_key }}') #>> '{}')
        {%- if kind == 'int' %}::bigint{% endif %}
    {%- endset -%}
    case
        when strpos({{ params_text }}, '{{ compact }}') > 0 then {{ fast }}
        when strpos({{ params_text }}, '"{{ key }}"') > 0 then {{ slow }}
    end
{%- endmacro %}
