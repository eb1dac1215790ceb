{#- The key of one identity record: source:identity_type:source_id[:stream] -#}
{% macro identity_node_key(source, identity_type, source_id, stream_id=none) -%}
    {%- if stream_id -%}
        {{ source }} || ':' || {{ identity_type }} || ':' || {{ source_id }}
            || coalesce(':' || {{ stream_id }}, '')
    {%- else -%}
        {{ source }} || ':' || {{ identity_type }} || ':' || {{ source_id }}
    {%- endif -%}
{%- endmacro %}

{#- The unified customer id of a cluster: a hash of its earliest member's node key, so the id is
    identical across rebuilds and changes only when the cluster's earliest member changes. -#}
{% macro customer_id_from_node(node_key) -%}
    'cus_' || left(md5({{ node_key }}), 16)
{%- endmacro %}

{#-
    Connected components of the bipartite graph node <-> identifier in `edges`
    (columns node_key, identifier_key), for every node in `nodes` (node_key, first_seen_at).
    Creates the session temp table `identity_components(node_key, root_node_key, cluster_size)`
    where root = the member with the earliest (first_seen_at, node_key).

    Set-based min-label propagation with pointer jumping: node ids are ranks in
    (first_seen_at, node_key) order, so the minimum label of a component is its earliest member.
    Each round: identifier label = min label of its nodes; node label = min label of its
    identifiers; then every label jumps to its label's label. Rounds stop when nothing changes
    (a handful of rounds: real identity graphs have a tiny diameter).
-#}
{% macro identity_components(nodes, edges, max_rounds=200) %}
do $cc$
declare
    changed bigint;
    rounds int := 0;
begin
    drop table if exists pg_temp.cc_nodes, pg_temp.cc_links, pg_temp.cc_label,
        pg_temp.identity_components;

    create temp table cc_nodes as
    select
        node_key,
        (row_number() over (order by first_seen_at, node_key))::int as node_id
    from {{ nodes }};
    create unique index on cc_nodes (node_key);
    create unique index on cc_nodes (node_id);

    create temp table cc_links as
    select distinct
        n.node_id,
        (dense_rank() over (order by e.identifier_key))::int as ident_id
    from {{ edges }} as e
    inner join cc_nodes as n on n.node_key = e.node_key;
    create index on cc_links (ident_id, node_id);
    create index on cc_links (node_id, ident_id);

    create temp table cc_label as
    select distinct node_id, node_id as label from cc_links;
    create unique index on cc_label (node_id);
    analyze cc_links;
    analyze cc_label;

    loop
        rounds := rounds + 1;
        update cc_label as c
        set label = m.label
        from (
            select l.node_id, min(i.label) as label
            from cc_links as l
            inner join (
                select l2.ident_id, min(b.label) as label
                from cc_links as l2
                inner join cc_label as b on b.node_id = l2.node_id
                group by l2.ident_id
            ) as i on i.ident_id = l.ident_id
            group by l.node_id
        ) as m
        where c.node_id = m.node_id and m.label < c.label;
        get diagnostics changed = row_count;

        -- pointer jumping: a label's own label is in the same component and no larger
        update cc_label as c
        set label = p.label
        from cc_label as p
        where c.label = p.node_id and p.label < c.label;

        exit when changed = 0;
        if rounds >= {{ max_rounds }} then
            raise exception 'identity resolution did not converge after % rounds', rounds;
        end if;
    end loop;
    raise notice 'identity components converged after % rounds', rounds;

    create temp table identity_components as
    select
        n.node_key,
        r.node_key as root_node_key,
        count(*) over (partition by coalesce(c.label, n.node_id))::int as cluster_size
    from cc_nodes as n
    left join cc_label as c on c.node_id = n.node_id
    inner join cc_nodes as r on r.node_id = coalesce(c.label, n.node_id);
end
$cc$
{% endmacro %}
