{#- int_timeline_events: in an incremental build, keep a source row when it was landed since the last build or its
    identity record was reassigned; both tested on the source row alone, before any join (the
    model defines the CTEs reassigned and reassigned_records).
    `source_id`/`source` (optional): the row's source id column and source, for tables with
    indexes on `_loaded_at` and on that column: both arms then become index scans (an array
    from a sub-select is an index condition; `node_key in (select ...)` is not). -#}
{%- macro timeline_source_changed(loaded_at, node_key, source_id=none, source=none) -%}
    {%- if is_incremental() %}
    {%- if source_id %}
    where ({{ loaded_at }} >= {{ last_build_barrier() }}
        or ({{ source_id }} = any(array(
                select source_id from reassigned_records where source = '{{ source }}'))
            and {{ node_key }} in (select node_key from reassigned)))
    {%- else %}
    where ({{ loaded_at }} >= {{ last_build_barrier() }}
        or {{ node_key }} in (select node_key from reassigned))
    {%- endif %}
    {%- endif -%}
{%- endmacro %}
