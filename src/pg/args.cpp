// Argument readers: type conversion under PgGuard, NULL and shape checks.
#include "belay/args.hpp"

#include "belay/uuid7.hpp"

#include <cmath>

namespace belay {

void Arguments::RequireNotNull(int index, const char *name) const {
	if (IsNull(index))
		ThrowNull(name);
}

std::string Arguments::Text(int index, const char *name) const {
	RequireNotNull(index, name);
	std::string out;
	PgGuard([&] {
		text *t = DatumGetTextPP(Raw(index));
		out.assign(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
	});
	return out;
}

std::optional<std::string> Arguments::OptText(int index) const {
	if (IsNull(index))
		return std::nullopt;
	return Text(index, "");
}

Datum Arguments::Uuid(int index, const char *name) const {
	RequireNotNull(index, name);
	return Raw(index);
}

int32 Arguments::Int4(int index, const char *name) const {
	RequireNotNull(index, name);
	return DatumGetInt32(Raw(index));
}

bool Arguments::Bool(int index, const char *name) const {
	RequireNotNull(index, name);
	return DatumGetBool(Raw(index));
}

TimestampTz Arguments::Timestamptz(int index, const char *name) const {
	RequireNotNull(index, name);
	TimestampTz value = DatumGetTimestampTz(Raw(index));
	if (TIMESTAMP_NOT_FINITE(value))
		ThrowInvalid(std::string(name) + " must be a finite timestamp");
	return value;
}

std::optional<TimestampTz> Arguments::OptTimestamptz(int index, const char *name) const {
	if (IsNull(index))
		return std::nullopt;
	return Timestamptz(index, name);
}

double Arguments::Number(int index, const char *name) const {
	RequireNotNull(index, name);
	double value = 0;
	bool is_nan = false;
	try {
		PgGuard([&] {
			Numeric numeric = DatumGetNumeric(Raw(index));
			is_nan = numeric_is_nan(numeric) || numeric_is_inf(numeric);
			if (!is_nan)
				value = DatumGetFloat8(DirectFunctionCall1(numeric_float8, NumericGetDatum(numeric)));
		});
	} catch (const PgError &) { // out of double's range; a conversion changes no state
		ThrowInvalid(std::string(name) + " is out of range");
	}
	if (is_nan || !std::isfinite(value))
		ThrowInvalid(std::string(name) + " must be a finite number");
	return value;
}

std::optional<double> Arguments::OptNumber(int index, const char *name) const {
	if (IsNull(index))
		return std::nullopt;
	return Number(index, name);
}

Datum Arguments::Json(int index, const char *name, JsonShape shape) const {
	RequireNotNull(index, name);
	Datum value = Raw(index);
	bool is_object = false, is_array = false;
	PgGuard([&] {
		Jsonb *jb = DatumGetJsonbP(value);
		value = JsonbPGetDatum(jb);
		is_object = JB_ROOT_IS_OBJECT(jb);
		is_array = JB_ROOT_IS_ARRAY(jb) && !JB_ROOT_IS_SCALAR(jb);
	});
	if (shape == JsonShape::Object && !is_object)
		ThrowInvalid(std::string(name) + " must be a JSON object");
	if (shape == JsonShape::Array && !is_array)
		ThrowInvalid(std::string(name) + " must be a JSON array");
	return value;
}

std::optional<Datum> Arguments::OptJson(int index) const {
	if (IsNull(index))
		return std::nullopt;
	return Json(index, "", JsonShape::Any);
}

std::string Arguments::JsonText(int index, const char *name, JsonShape shape) const {
	Datum value = Json(index, name, shape);
	std::string out;
	PgGuard([&] {
		Jsonb *jb = DatumGetJsonbP(value);
		char *text = JsonbToCString(nullptr, &jb->root, VARSIZE(jb));
		out = text;
		pfree(text);
	});
	return out;
}

Datum TextDatum(const std::string &value) {
	Datum datum = 0;
	PgGuard([&] { datum = PointerGetDatum(cstring_to_text_with_len(value.data(), value.size())); });
	return datum;
}

Datum NewUuidDatum() {
	UuidBytes id = NewUuid7();
	Datum out = 0;
	PgGuard([&] {
		pg_uuid_t *uuid = static_cast<pg_uuid_t *>(palloc(sizeof(pg_uuid_t)));
		memcpy(uuid->data, id.data(), UUID_LEN);
		out = UUIDPGetDatum(uuid);
	});
	return out;
}

std::string UuidToString(Datum uuid) {
	std::string out;
	PgGuard([&] {
		char *text = DatumGetCString(DirectFunctionCall1(uuid_out, uuid));
		out = text;
		pfree(text);
	});
	return out;
}

std::string UuidBytesOf(Datum uuid) {
	return std::string(reinterpret_cast<const char *>(DatumGetUUIDP(uuid)->data), UUID_LEN);
}

std::vector<Datum> UuidArrayElements(Datum array) {
	std::vector<Datum> out;
	PgGuard([&] {
		Datum *elements = nullptr;
		int count = 0;
		deconstruct_array(DatumGetArrayTypeP(array), UUIDOID, UUID_LEN, false, TYPALIGN_CHAR, &elements, nullptr,
		                  &count);
		out.assign(elements, elements + count);
		pfree(elements);
	});
	return out;
}

TimestampTz ParseTimestamptz(const std::string &text, const std::string &what) {
	TimestampTz value = 0;
	try {
		PgGuard([&] {
			value = DatumGetTimestampTz(DirectFunctionCall3(timestamptz_in, CStringGetDatum(text.c_str()),
			                                                ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)));
		});
	} catch (const PgError &) {
		throw Error(sqlstate::kMalformed, what + " is not a valid timestamp: \"" + text + "\"", {},
		            "Use ISO 8601 with a time zone, for example \"2030-01-01T12:00:00Z\".");
	}
	if (TIMESTAMP_NOT_FINITE(value))
		ThrowInvalid(what + " must be a finite timestamp");
	return value;
}

TimestampTz Now() { return GetCurrentTimestamp(); }

} // namespace belay
