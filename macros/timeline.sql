{#- int_timeline_events: in an incremental build, keep a source row when it was landed since the last build or its
    identity record was reassigned; both tested on the source row alone, before any join (the
    model defines the CTEs last_build and reassigned) -#}
{%- macro timeline_source_changed(loaded_at, node_key) -%}
    {%- if is_incremental() %}
    where ({{ loaded_at }} >= (select barrier_at from last_build)
        or {{ node_key }} in (select node_key from reassigned))
    {%- endif -%}
{%- endmacro %}
