"""Fast serialisation with the marshmallow response schemas.

`Schema.dump` spends most of its time finding each value (`get_value` through several layers) for
every field of every record: about 5 ms for a page of 100 loans, more than the query. `Dumper`
walks the same schema once, keeps for each field its key, attribute and the field's own
`_serialize`, and then applies them directly, so the output is exactly what `Schema.dump` writes
(tests compare the two) at a fraction of the cost. Nested schemas are compiled the same way, and
the schema's post_dump processors (the loan plugin hook) still run: in a list, only when the
schema's `post_dump_wanted()` (if it has one) says they have something to do.
"""

from collections.abc import Mapping

from marshmallow import Schema, fields
from marshmallow.utils import missing

POST_DUMP = "post_dump"


class Dumper:
    """`Dumper(schema).dump(obj)` == `schema.dump(obj)` for one object."""

    def __init__(self, schema: Schema):
        self.schema = schema
        self.plan = [self._step(name, field) for name, field in schema.dump_fields.items()]
        self.post_dump = bool(schema._hooks[POST_DUMP])
        if schema._hooks["pre_dump"]:
            raise ValueError(f"{type(schema).__name__}: pre_dump processors are not supported")

    def _step(self, name: str, field: fields.Field):
        key = field.data_key if field.data_key is not None else name
        attribute = field.attribute or name
        if "." in attribute or not field._CHECK_ATTRIBUTE:
            return key, None, self._generic(name, field)
        if isinstance(field, fields.Nested) and not field.many:
            inner = Dumper(field.schema)
            return key, attribute, (lambda value, _a, _o, inner=inner: inner.dump(value))
        if isinstance(field, fields.List) and isinstance(field.inner, fields.Nested):
            inner = Dumper(field.inner.schema)
            return key, attribute, (lambda value, _a, _o, inner=inner: inner.dump_all(value))
        return key, attribute, field._serialize, field

    def _generic(self, name, field):
        accessor = self.schema.get_attribute
        return lambda obj: field.serialize(name, obj, accessor=accessor)

    def dump_all(self, objs) -> list:
        """[self.dump(obj) for obj in objs]; a schema may define `post_dump_wanted()`, asked once
        for the whole list, to say that its post_dump processors have nothing to do."""
        wanted = getattr(self.schema, "post_dump_wanted", None)
        post_dump = self.post_dump and (wanted is None or wanted())
        return [self.dump(obj, post_dump) for obj in objs]

    def dump(self, obj, post_dump: bool = True):
        if obj is None:
            return None
        is_mapping = isinstance(obj, Mapping)
        # An ORM instance keeps its loaded column values in its __dict__, where its instrumented
        # attributes read them: reading them there directly saves a descriptor call per field.
        # Anything not there (a property, an unloaded attribute) is read with getattr.
        loaded = obj if is_mapping else getattr(obj, "__dict__", {})
        data = {}
        for key, attribute, serialize, *field in self.plan:
            if attribute is None:
                value = serialize(obj)
            else:
                value = loaded.get(attribute, missing)
                if value is missing and not is_mapping:
                    value = getattr(obj, attribute, missing)
                if value is missing and field:
                    default = field[0].dump_default
                    value = default() if callable(default) else default
                if value is missing:
                    continue
                value = None if value is None else serialize(value, attribute, obj)
            if value is not missing:
                data[key] = value
        if post_dump and self.post_dump:
            data = self.schema._invoke_dump_processors(
                POST_DUMP, data, many=False, original_data=obj
            )
        return data
