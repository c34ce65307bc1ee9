// SCF's timer cron: parsing the 7-field expression (`second minute hour day month weekday year`)
// or the legacy 5-field one (`minute hour day month weekday`), and computing the next firing time
// in UTC. Pure logic: no bindings, no I/O, no dependency above shared/.
//
// Semantics (SCF documents the fields and the OR rule; the special characters follow Quartz):
// - `,` union, `-` inclusive range, `*` every value, `/` step (`a/b` = a, a+b, … up to the field's
//   maximum; `*/b` from the field's minimum; `a-c/b` within the range).
// - A reversed range wraps around in the cyclic fields (`22-2` hours = 22, 23, 0, 1, 2; `FRI-MON`;
//   `NOV-FEB`; `25-5` days); a step counts along the wrapped sequence. Years do not wrap: a
//   reversed year range is refused.
// - Month names JAN…DEC, weekday names SUN…SAT (any case); weekday 0-6 with 0 = Sunday, 7 is also
//   Sunday. Years 1970-2099.
// - Day: `?` (no value: the whole field), `L` (last day of the month), `LW` (last weekday, Mon-Fri,
//   of the month), `nW` (the weekday nearest to day n, never leaving the month; no match when the
//   month has no day n). Weekday: `?`, `nL` (the last weekday n of the month), `n#k` (the k-th
//   weekday n of the month, k 1-5; no match in a month without one). Special items may be listed
//   with ordinary ones (`1,15,L`).
// - Day and weekday: a field is unrestricted only when it is exactly `*` or `?`. Both restricted →
//   a date matches when either matches (OR); one restricted → that one alone; neither → every day.
//   Both `?` is refused.
// - An expression no date can ever match (e.g. `0 0 0 30 2 ? *`, `0 0 0 31 APR ? *`) is refused
//   when parsed. One whose years are all past parses, and `nextFireAfter` returns undefined.
// - The smallest interval between two firings is 1 s: every second is allowed (`* * * * * * *`).
import { PlatformError } from "../shared/errors";

/** Longest cron text accepted, in characters. */
export const MAX_CRON_CHARS = 100;
/** Earliest year a cron expression may name (SCF's range). */
export const CRON_MIN_YEAR = 1970;
/** Latest year a cron expression may name (SCF's range); nothing fires after it. */
export const CRON_MAX_YEAR = 2099;

/** The day-of-month field, decided per month. */
interface DaySpec {
  /** False when the field is `*` or `?`. */
  readonly restricted: boolean;
  /** Plain days 1-31 (index = day). */
  readonly days: readonly boolean[];
  /** `L`: the last day of the month. */
  readonly last: boolean;
  /** `LW`: the last Monday-Friday of the month. */
  readonly lastWeekday: boolean;
  /** `nW`: the weekday nearest to each of these days. */
  readonly nearestWeekday: readonly number[];
}

/** The weekday field, decided per date. */
interface WeekdaySpec {
  readonly restricted: boolean;
  /** Plain weekdays 0-6 (index = weekday, 0 = Sunday). */
  readonly weekdays: readonly boolean[];
  /** `nL`: the last weekday n of the month. */
  readonly lastOf: readonly number[];
  /** `n#k`: the k-th weekday n of the month. */
  readonly nth: readonly { readonly weekday: number; readonly k: number }[];
}

/** A parsed SCF cron expression. Opaque to callers except `text` (the normalised expression). */
export interface CronSchedule {
  /** The expression as parsed: trimmed, single spaces between fields, upper case; 5 or 7 fields as given. */
  readonly text: string;
  readonly seconds: readonly number[];
  readonly minutes: readonly number[];
  readonly hours: readonly number[];
  readonly day: DaySpec;
  /** Months 1-12, ascending. */
  readonly months: readonly number[];
  readonly weekday: WeekdaySpec;
  /** Years, ascending. */
  readonly years: readonly number[];
}

/** One field's domain and how it reads. */
interface FieldDef {
  readonly label: string;
  readonly min: number;
  /** Largest value written (weekday: 7, read as Sunday). */
  readonly max: number;
  /** Names of the values from `min` upwards, when the field has names. */
  readonly names?: readonly string[];
  /** Whether a reversed range wraps around. */
  readonly cyclic: boolean;
}

const SECOND: FieldDef = { label: "second", min: 0, max: 59, cyclic: true };
const MINUTE: FieldDef = { label: "minute", min: 0, max: 59, cyclic: true };
const HOUR: FieldDef = { label: "hour", min: 0, max: 23, cyclic: true };
const DAY: FieldDef = { label: "day", min: 1, max: 31, cyclic: true };
const MONTH: FieldDef = {
  label: "month",
  min: 1,
  max: 12,
  cyclic: true,
  names: ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"],
};
const WEEKDAY: FieldDef = {
  label: "weekday",
  min: 0,
  max: 7,
  cyclic: true,
  names: ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"],
};
const YEAR: FieldDef = { label: "year", min: CRON_MIN_YEAR, max: CRON_MAX_YEAR, cyclic: false };

/** Characters a cron expression may contain. */
const ALLOWED_CHARS = /^[0-9A-Za-z*?,/#\- \t]*$/;

function invalid(message: string): PlatformError {
  return new PlatformError("INVALID_PARAMETER", message);
}

function fieldError(field: FieldDef, text: string, problem: string): PlatformError {
  return invalid(`cron ${field.label} field "${text}": ${problem}`);
}

/** Number of distinct values of a field (weekday: 7). */
function fieldSize(field: FieldDef): number {
  return field === WEEKDAY ? 7 : field.max - field.min + 1;
}

/** Reads one value: digits or (month, weekday) a name. Weekday 7 stays 7 here. */
function parseValue(field: FieldDef, fieldText: string, token: string): number {
  if (token === "") throw fieldError(field, fieldText, "a value is missing");
  if (/^\d+$/.test(token)) {
    const value = token.length > 4 ? Number.POSITIVE_INFINITY : Number(token);
    if (value < field.min || value > field.max) {
      throw fieldError(field, fieldText, `value ${token} is out of range ${field.min}-${field.max}`);
    }
    return value;
  }
  if (field.names) {
    const index = field.names.indexOf(token);
    if (index >= 0) return field.min + index;
    throw fieldError(
      field,
      fieldText,
      `"${token}" is neither a number nor a ${field.label} name (${field.names[0]}-${field.names.at(-1)})`,
    );
  }
  throw fieldError(field, fieldText, `"${token}" is not a number`);
}

function parseStep(field: FieldDef, fieldText: string, token: string): number {
  const size = fieldSize(field);
  if (!/^\d+$/.test(token)) throw fieldError(field, fieldText, `step "${token}" is not a number`);
  const step = token.length > 4 ? Number.POSITIVE_INFINITY : Number(token);
  if (step < 1 || step > size) throw fieldError(field, fieldText, `step ${token} is out of range 1-${size}`);
  return step;
}

/** The values of `from` … `to` in the field's cycle (wrapping when `to` < `from`), every `step`-th. */
function walk(field: FieldDef, from: number, to: number, step: number, out: Set<number>): void {
  const size = fieldSize(field);
  const length = (((to - from) % size) + size) % size;
  for (let offset = 0; offset <= length; offset += step) {
    out.add(field.min + ((from - field.min + offset) % size));
  }
}

/** Adds the values of one plain list item (`*`, `n`, `a-b`, with an optional `/step`). */
function addPlainItem(field: FieldDef, fieldText: string, item: string, out: Set<number>): void {
  const parts = item.split("/");
  if (parts.length > 2) throw fieldError(field, fieldText, `"${item}" has more than one "/"`);
  const [base = "", stepText] = parts;
  const step = stepText === undefined ? 1 : parseStep(field, fieldText, stepText);
  // Weekday values are read 0-7 and folded to 0-6 (7 = Sunday) before walking the cycle.
  const top = field === WEEKDAY ? 6 : field.max;
  const fold = (value: number) => (field === WEEKDAY && value === 7 ? 0 : value);
  if (base === "*") {
    walk(field, field.min, top, step, out);
    return;
  }
  const bounds = base.split("-");
  if (bounds.length > 2) throw fieldError(field, fieldText, `"${base}" has more than one "-"`);
  const [startText = "", endText] = bounds;
  const start = parseValue(field, fieldText, startText);
  if (endText === undefined) {
    if (stepText === undefined) out.add(fold(start));
    else if (fold(start) <= top) walk(field, fold(start), top, step, out);
    return;
  }
  const end = parseValue(field, fieldText, endText);
  if (field === WEEKDAY && start <= end) {
    // 5-7 is Friday to Sunday, 0-7 the whole week: walk 0-7 as written, then fold 7 to Sunday.
    for (let value = start; value <= end; value += step) out.add(fold(value));
    return;
  }
  if (start > end && !field.cyclic) {
    throw fieldError(field, fieldText, `range ${base} is reversed (the ${field.label} does not wrap around)`);
  }
  walk(field, fold(start), fold(end), step, out);
}

/** Splits a field into its comma-separated items, refusing empty ones. */
function itemsOf(field: FieldDef, fieldText: string): string[] {
  const items = fieldText.split(",");
  if (items.some((item) => item === "")) throw fieldError(field, fieldText, "an item of the list is empty");
  return items;
}

function refuseSpecials(field: FieldDef, fieldText: string, item: string): void {
  if (item.includes("?")) throw fieldError(field, fieldText, `"?" is allowed only as the whole day or weekday field`);
  if (item.includes("#")) throw fieldError(field, fieldText, `"#" is allowed only in the weekday field`);
}

/** A plain field (second, minute, hour, month, year): its values, ascending. */
function parsePlainField(field: FieldDef, fieldText: string): number[] {
  const values = new Set<number>();
  for (const item of itemsOf(field, fieldText)) {
    refuseSpecials(field, fieldText, item);
    addPlainItem(field, fieldText, item, values);
  }
  return [...values].sort((a, b) => a - b);
}

function parseDayField(fieldText: string): DaySpec {
  const days = new Array<boolean>(32).fill(false);
  let last = false;
  let lastWeekday = false;
  const nearest = new Set<number>();
  if (fieldText === "?") return { restricted: false, days: days.fill(true, 1), last, lastWeekday, nearestWeekday: [] };
  const plain = new Set<number>();
  for (const item of itemsOf(DAY, fieldText)) {
    if (item.includes("?")) throw fieldError(DAY, fieldText, `"?" must be the whole field`);
    if (item.includes("#")) throw fieldError(DAY, fieldText, `"#" is allowed only in the weekday field`);
    if (item === "L") last = true;
    else if (item === "LW") lastWeekday = true;
    else if (item.endsWith("W")) {
      const dayText = item.slice(0, -1);
      if (!/^\d+$/.test(dayText)) throw fieldError(DAY, fieldText, `"${item}": W needs one day before it (e.g. 15W)`);
      nearest.add(parseValue(DAY, fieldText, dayText));
    } else if (item.includes("L") || item.includes("W")) {
      throw fieldError(DAY, fieldText, `"${item}": L and W are allowed only as L, LW or nW`);
    } else addPlainItem(DAY, fieldText, item, plain);
  }
  for (const day of plain) days[day] = true;
  return {
    restricted: fieldText !== "*",
    days,
    last,
    lastWeekday,
    nearestWeekday: [...nearest].sort((a, b) => a - b),
  };
}

function parseWeekdayField(fieldText: string): WeekdaySpec {
  const weekdays = new Array<boolean>(7).fill(false);
  if (fieldText === "?") return { restricted: false, weekdays: weekdays.fill(true), lastOf: [], nth: [] };
  const lastOf = new Set<number>();
  const nth: { weekday: number; k: number }[] = [];
  const plain = new Set<number>();
  const fold = (value: number) => value % 7;
  for (const item of itemsOf(WEEKDAY, fieldText)) {
    if (item.includes("?")) throw fieldError(WEEKDAY, fieldText, `"?" must be the whole field`);
    if (item.includes("#")) {
      const [weekdayText = "", kText = "", ...rest] = item.split("#");
      if (rest.length > 0) throw fieldError(WEEKDAY, fieldText, `"${item}" has more than one "#"`);
      const weekday = fold(parseValue(WEEKDAY, fieldText, weekdayText));
      if (!/^[1-5]$/.test(kText)) {
        throw fieldError(WEEKDAY, fieldText, `"${item}": the occurrence after "#" must be 1-5`);
      }
      const k = Number(kText);
      if (!nth.some((entry) => entry.weekday === weekday && entry.k === k)) nth.push({ weekday, k });
    } else if (item.endsWith("L")) {
      const weekdayText = item.slice(0, -1);
      if (weekdayText === "") {
        throw fieldError(WEEKDAY, fieldText, `"L" needs a weekday before it (e.g. 5L or FRIL, the last Friday)`);
      }
      lastOf.add(fold(parseValue(WEEKDAY, fieldText, weekdayText)));
    } else addPlainItem(WEEKDAY, fieldText, item, plain);
  }
  for (const weekday of plain) weekdays[weekday] = true;
  return { restricted: fieldText !== "*", weekdays, lastOf: [...lastOf].sort((a, b) => a - b), nth };
}

/**
 * Parses SCF's 7-field cron (`second minute hour day month weekday year`) or the legacy 5-field
 * form (`minute hour day month weekday`, read as second 0, any year). Throws PlatformError
 * ("INVALID_PARAMETER", message naming the field and what is wrong) on anything else.
 */
export function parseCron(text: string): CronSchedule {
  if (typeof text !== "string") throw invalid("cron expression must be a string");
  if (text.length > MAX_CRON_CHARS) throw invalid(`cron expression is over ${MAX_CRON_CHARS} characters`);
  if (!ALLOWED_CHARS.test(text)) {
    const bad = [...text].find((char) => !ALLOWED_CHARS.test(char)) ?? "";
    throw invalid(
      `cron expression contains the character ${JSON.stringify(bad)}; allowed are digits, letters, space, tab and * ? , / - #`,
    );
  }
  const trimmed = text.trim().toUpperCase();
  if (trimmed === "") throw invalid("cron expression is empty");
  const fields = trimmed.split(/[ \t]+/);
  let seven: string[];
  if (fields.length === 7) seven = fields;
  else if (fields.length === 5) seven = ["0", ...fields, "*"];
  else {
    throw invalid(
      `cron expression has ${fields.length} fields; expected 7 (second minute hour day month weekday year) or the legacy 5 (minute hour day month weekday)`,
    );
  }
  const [second, minute, hour, day, month, weekday, year] = seven as [
    string,
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  if (day === "?" && weekday === "?") throw invalid(`cron day and weekday fields cannot both be "?"`);
  const schedule: CronSchedule = {
    text: fields.join(" "),
    seconds: parsePlainField(SECOND, second),
    minutes: parsePlainField(MINUTE, minute),
    hours: parsePlainField(HOUR, hour),
    day: parseDayField(day),
    months: parsePlainField(MONTH, month),
    weekday: parseWeekdayField(weekday),
    years: parsePlainField(YEAR, year),
  };
  if (search(schedule, Date.UTC(CRON_MIN_YEAR, 0, 1) - 1000).time === undefined) {
    throw invalid(
      `cron expression "${schedule.text}" never fires: no date matches its day, weekday, month and year fields together`,
    );
  }
  return schedule;
}

/** Days in a month (month 1-12). */
function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/** The weekday (0 = Sunday) of the 1st of a month. */
function firstWeekday(year: number, month: number): number {
  return new Date(Date.UTC(year, month - 1, 1)).getUTCDay();
}

/** The Monday-Friday nearest to `day` (≤ lastDay) within its month. */
function nearestWeekdayOf(day: number, lastDay: number, weekdayOfFirst: number): number {
  const weekday = (weekdayOfFirst + day - 1) % 7;
  if (weekday === 6) return day === 1 ? day + 2 : day - 1;
  if (weekday === 0) return day === lastDay ? day - 2 : day + 1;
  return day;
}

/** Which days (index 1-31) of a month the day and weekday fields together allow. */
function matchingDays(schedule: CronSchedule, year: number, month: number): boolean[] {
  const lastDay = daysInMonth(year, month);
  const weekdayOfFirst = firstWeekday(year, month);
  const { day: daySpec, weekday: weekdaySpec } = schedule;
  const byDay = new Array<boolean>(32).fill(false);
  for (let day = 1; day <= lastDay; day++) byDay[day] = daySpec.days[day] === true;
  if (daySpec.last) byDay[lastDay] = true;
  if (daySpec.lastWeekday) byDay[nearestWeekdayOf(lastDay, lastDay, weekdayOfFirst)] = true;
  for (const day of daySpec.nearestWeekday) {
    if (day <= lastDay) byDay[nearestWeekdayOf(day, lastDay, weekdayOfFirst)] = true;
  }
  const byWeekday = new Array<boolean>(32).fill(false);
  for (let day = 1; day <= lastDay; day++) {
    const weekday = (weekdayOfFirst + day - 1) % 7;
    byWeekday[day] =
      weekdaySpec.weekdays[weekday] === true ||
      (day + 7 > lastDay && weekdaySpec.lastOf.includes(weekday)) ||
      weekdaySpec.nth.some((entry) => entry.weekday === weekday && Math.ceil(day / 7) === entry.k);
  }
  const result = new Array<boolean>(32).fill(false);
  for (let day = 1; day <= lastDay; day++) {
    if (daySpec.restricted && weekdaySpec.restricted) result[day] = byDay[day] === true || byWeekday[day] === true;
    else if (daySpec.restricted) result[day] = byDay[day] === true;
    else if (weekdaySpec.restricted) result[day] = byWeekday[day] === true;
    else result[day] = true;
  }
  return result;
}

/** What a search found and how many steps (loop iterations) it took. */
export interface CronSearch {
  /** The firing time (epoch ms), or undefined when there is none up to CRON_MAX_YEAR. */
  readonly time: number | undefined;
  /** Loop iterations the search made: bounded by the field sizes, never by the distance searched. */
  readonly steps: number;
}

/**
 * The search behind `nextFireAfter`, reporting its step count: it walks year → month → day → hour
 * → minute → second over the field sets, so its cost is bounded (at most the 130 years × 12 months
 * × 31 days of the range, plus one pass over each time field), whatever the distance.
 */
export function searchNextFire(schedule: CronSchedule, afterMs: number): CronSearch {
  return search(schedule, afterMs);
}

function search(schedule: CronSchedule, afterMs: number): CronSearch {
  let steps = 0;
  if (Number.isNaN(afterMs) || afterMs >= Date.UTC(CRON_MAX_YEAR + 1, 0, 1)) return { time: undefined, steps };
  // The first whole second strictly after `afterMs`, never before 1970-01-01T00:00:00Z.
  const startSecond = Math.max(Math.floor(afterMs / 1000) + 1, Date.UTC(CRON_MIN_YEAR, 0, 1) / 1000);
  const start = new Date(startSecond * 1000);
  const [startYear, startMonth, startDay] = [start.getUTCFullYear(), start.getUTCMonth() + 1, start.getUTCDate()];
  const [startHour, startMinute, startSec] = [start.getUTCHours(), start.getUTCMinutes(), start.getUTCSeconds()];
  for (const year of schedule.years) {
    steps++;
    if (year < startYear) continue;
    const yearTight = year === startYear;
    for (const month of schedule.months) {
      steps++;
      if (yearTight && month < startMonth) continue;
      const monthTight = yearTight && month === startMonth;
      const days = matchingDays(schedule, year, month);
      steps += 31;
      for (let day = monthTight ? startDay : 1; day <= 31; day++) {
        if (!days[day]) continue;
        const dayTight = monthTight && day === startDay;
        for (const hour of schedule.hours) {
          steps++;
          if (dayTight && hour < startHour) continue;
          const hourTight = dayTight && hour === startHour;
          for (const minute of schedule.minutes) {
            steps++;
            if (hourTight && minute < startMinute) continue;
            const minuteTight = hourTight && minute === startMinute;
            for (const second of schedule.seconds) {
              steps++;
              if (minuteTight && second < startSec) continue;
              return { time: Date.UTC(year, month - 1, day, hour, minute, second), steps };
            }
          }
        }
      }
    }
  }
  return { time: undefined, steps };
}

/**
 * The first firing time strictly after `afterMs` (epoch ms, UTC), in whole seconds (ms = 0), or
 * undefined when there is none (e.g. only past years). Evaluated in UTC.
 */
export function nextFireAfter(schedule: CronSchedule, afterMs: number): number | undefined {
  return search(schedule, afterMs).time;
}
