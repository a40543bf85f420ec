// Output: aligned tables and key/value blocks for people, JSON documents for scripts.
#include "cli.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <iostream>

namespace belayctl {
namespace {

// Columns on screen: UTF-8 code points (continuation bytes take no column).
size_t DisplayWidth(const std::string &text) {
	size_t width = 0;
	for (unsigned char ch : text)
		if ((ch & 0xC0) != 0x80)
			++width;
	return width;
}

std::string Pad(const std::string &text, size_t width, bool right) {
	size_t have = DisplayWidth(text);
	if (have >= width)
		return text;
	std::string fill(width - have, ' ');
	return right ? fill + text : text + fill;
}

void TrimRight(std::string &line) {
	while (!line.empty() && line.back() == ' ')
		line.pop_back();
}

// Cuts text to at most max code points, ending in "..." when cut.
std::string Cut(const std::string &text, size_t max) {
	if (max == 0 || DisplayWidth(text) <= max)
		return text;
	size_t keep = max > 3 ? max - 3 : max, seen = 0, i = 0;
	for (; i < text.size(); ++i) {
		if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) {
			if (seen == keep)
				break;
			++seen;
		}
	}
	return text.substr(0, i) + "...";
}

} // namespace

Table::Table(std::vector<std::string> headers) : headers_(std::move(headers)), right_(headers_.size(), false) {}

Table &Table::RightAlign(std::vector<size_t> columns) {
	for (size_t column : columns)
		if (column < right_.size())
			right_[column] = true;
	return *this;
}

void Table::Add(std::vector<std::string> cells) {
	cells.resize(headers_.size());
	rows_.push_back(std::move(cells));
}

std::string Table::Render(const std::string &indent) const {
	std::vector<size_t> widths(headers_.size());
	for (size_t c = 0; c < headers_.size(); ++c) {
		widths[c] = DisplayWidth(headers_[c]);
		for (const auto &row : rows_)
			widths[c] = std::max(widths[c], DisplayWidth(row[c]));
	}
	auto line = [&](const std::vector<std::string> &cells) {
		std::string out = indent;
		for (size_t c = 0; c < cells.size(); ++c) {
			if (c > 0)
				out += "  ";
			out += Pad(cells[c], widths[c], right_[c]);
		}
		TrimRight(out);
		return out + "\n";
	};
	std::string out = line(headers_);
	for (const auto &row : rows_)
		out += line(row);
	return out;
}

std::string RenderFields(const std::vector<std::pair<std::string, std::string>> &fields, const std::string &indent) {
	size_t width = 0;
	for (const auto &field : fields)
		width = std::max(width, DisplayWidth(field.first));
	std::string out;
	for (const auto &[key, value] : fields) {
		std::string line = indent + Pad(key, width, false) + "  " + value;
		TrimRight(line);
		out += line + "\n";
	}
	return out;
}

std::string IsoTime(const std::string &pg) {
	// "YYYY-MM-DD HH:MM:SS[.ffffff]+HH[:MM[:SS]]"; anything else (infinity, BC dates) as is.
	if (pg.size() < 22 || pg[10] != ' ' || pg[13] != ':' || pg[16] != ':')
		return pg;
	std::string out = pg;
	out[10] = 'T';
	size_t sign = out.find_last_of("+-");
	if (sign == std::string::npos || sign < 19)
		return out;
	if (out.size() - sign == 3) // "+HH"
		out += ":00";
	return out;
}

Doc TimeJson(const std::optional<std::string> &pg) {
	if (!pg)
		return nullptr;
	return IsoTime(*pg);
}

std::string TableTime(const std::optional<std::string> &pg) {
	if (!pg)
		return "-";
	const std::string &text = *pg;
	if (text.size() < 20 || text[10] != ' ' || text[19] != '.')
		return text;
	size_t end = 20;
	while (end < text.size() && std::isdigit(static_cast<unsigned char>(text[end])))
		++end;
	return text.substr(0, 19) + text.substr(end);
}

std::optional<std::string> OptText(const pqxx::field &field) {
	if (field.is_null())
		return std::nullopt;
	return std::string(field.c_str());
}

Json JsonField(const pqxx::field &field) {
	if (field.is_null())
		return nullptr;
	return Json::parse(field.c_str());
}

std::string CellJson(const Json &value, size_t max_chars) {
	if (value.is_null())
		return "-";
	return Cut(value.dump(-1, ' ', false, Json::error_handler_t::replace), max_chars);
}

std::string Cell(const std::string &text) {
	std::string out;
	out.reserve(text.size());
	for (unsigned char ch : text) {
		if (ch == '\n')
			out += "\\n";
		else if (ch == '\t')
			out += "\\t";
		else if (ch < 0x20 || ch == 0x7F)
			out += '?';
		else
			out += static_cast<char>(ch);
	}
	return out;
}

std::string Fixed(double value, int decimals) {
	char text[64];
	std::snprintf(text, sizeof text, "%.*f", decimals, value);
	return text;
}

std::string HumanSeconds(double seconds) {
	if (seconds < 0)
		seconds = 0;
	if (seconds < 60)
		return Fixed(seconds, seconds < 10 ? 2 : 1) + "s";
	long whole = static_cast<long>(std::floor(seconds));
	char text[64];
	if (whole < 3600)
		std::snprintf(text, sizeof text, "%ldm%02lds", whole / 60, whole % 60);
	else if (whole < 86400)
		std::snprintf(text, sizeof text, "%ldh%02ldm", whole / 3600, whole % 3600 / 60);
	else
		std::snprintf(text, sizeof text, "%ldd%02ldh", whole / 86400, whole % 86400 / 3600);
	return text;
}

std::string HumanDuration(long seconds) {
	if (seconds <= 0)
		return "0s";
	static const std::pair<long, const char *> units[] = {{86400, "d"}, {3600, "h"}, {60, "m"}, {1, "s"}};
	std::string out;
	for (const auto &[size, name] : units) {
		if (seconds >= size) {
			out += std::to_string(seconds / size) + name;
			seconds %= size;
		}
	}
	return out;
}

std::string Rate(double per_second) {
	if (per_second == 0)
		return "0";
	if (per_second >= 100)
		return Fixed(per_second, 0);
	if (per_second >= 1)
		return Fixed(per_second, 2);
	char text[64];
	std::snprintf(text, sizeof text, "%.2g", per_second);
	return text;
}

void PrintJson(const Doc &document) {
	std::cout << document.dump(2, ' ', false, Doc::error_handler_t::replace) << "\n";
}

} // namespace belayctl
