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

{#-
    The records a nightly build of int_identities_stitched must re-resolve, into the session temp
    table identity_scope(node_key); also creates identity_signatures(node_key, edge_signature),
    each record's current set of linking identifiers as one hash.

    Seeds: records that are new, whose first_seen_at moved (it decides the root, hence the
    customer_id), whose linking identifiers changed (edge_signature), or that vanished (an
    erased record). Scope: the seeds, every record sharing an identifier with a seed now, and
    every record of the customers those belonged to at the previous build. That set is closed
    under today's links: a link from a record outside the seeds existed at the previous build too,
    so its other end was in the same customer then, and that customer is in the scope whole.
    Everything outside the scope keeps its customer: its component neither gained nor lost a link.
-#}
{% macro identity_stitch_scope(previous, nodes, edges) %}
drop table if exists pg_temp.identity_signatures, pg_temp.identity_seeds, pg_temp.identity_scope,
    pg_temp.identity_scoped_nodes, pg_temp.identity_scoped_edges;

create temp table identity_signatures as
select
    node_key,
    md5(string_agg(identifier_key, ',' order by identifier_key collate "C")) as edge_signature
from {{ edges }}
group by node_key;
create unique index on identity_signatures (node_key);
analyze identity_signatures;

{% if previous is not none %}
create temp table identity_seeds as
select nodes.node_key
from {{ nodes }} as nodes
left join {{ previous }} as previous on previous.node_key = nodes.node_key
left join identity_signatures as signatures on signatures.node_key = nodes.node_key
where previous.node_key is null
    or previous.first_seen_at is distinct from nodes.first_seen_at
    or previous.edge_signature is distinct from coalesce(signatures.edge_signature, '')
union
select previous.node_key
from {{ previous }} as previous
where not exists (select 1 from {{ nodes }} as nodes where nodes.node_key = previous.node_key);

create temp table identity_scope as
with neighbours as (
    select linked.node_key
    from identity_seeds as seeds
    inner join {{ edges }} as seed_edges on seed_edges.node_key = seeds.node_key
    inner join {{ edges }} as linked on linked.identifier_key = seed_edges.identifier_key
),

touched as (
    select node_key from identity_seeds
    union
    select node_key from neighbours
),

previous_customers as (
    select distinct previous.customer_id
    from touched
    inner join {{ previous }} as previous on previous.node_key = touched.node_key
)

select node_key from touched
union
select previous.node_key
from {{ previous }} as previous
inner join previous_customers on previous_customers.customer_id = previous.customer_id;
create unique index on identity_scope (node_key);
analyze identity_scope;

create temp table identity_scoped_nodes as
select nodes.node_key, nodes.first_seen_at
from {{ nodes }} as nodes
inner join identity_scope using (node_key);

create temp table identity_scoped_edges as
select edges.node_key, edges.identifier_key
from {{ edges }} as edges
inner join identity_scope using (node_key);
{% endif %}
{% endmacro %}
